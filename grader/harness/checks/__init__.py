"""The server checks by topic; `grader.harness.checklib` is their public face."""
