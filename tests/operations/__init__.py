"""Tests of operating the queue (issue 13): the job CLI, redrive, error history, metrics,
traces and secrets, against a real PostgreSQL."""
