"""Stage 2 rules on a posterior model: threshold, fixed fraction, consecutive, full clip and aeon's, with one tuning loop."""
