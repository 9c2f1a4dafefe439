"""In-sandbox harness: runs an assignment's pytest checks against one submission."""
