"""Evaluating a trained run beside the rules, reports and plots."""
