"""Raw ticks: the day-partitioned tick store contents and their schema checks."""
