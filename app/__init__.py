"""The AdaMotion Studio Gradio app (thin: pipeline, renderers and retrieval come from the library)."""
