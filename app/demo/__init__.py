"""Fictional demo data set loaded on the first start of an empty store."""
