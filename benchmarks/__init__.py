"""`make bench`: every figure measured side by side with its baseline in one run, printed as a table."""
