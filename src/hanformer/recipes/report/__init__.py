"""The run report: `collect` gathers the run folder's results into `metrics.json`'s data, and
`render` turns that data into one self-contained `report.html` (`task_section`, `format` and
`metric_names` are its parts; the figures come from `recipes/plots.py`)."""
