"""The client assignment's checks by topic; `grader.harness.clientlib` is their public face."""
