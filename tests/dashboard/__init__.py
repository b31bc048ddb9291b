"""Tests of the web dashboard (issue 14): every page in a real headless browser (the system's
Chromium through Playwright) against a real PostgreSQL, the actions, and the security rules."""
