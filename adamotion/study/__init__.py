"""User studies: build a study folder, collect rankings in SQLite, export results."""
