"""Recipes that build covergen's shipped models and test audio (`make models`)."""
