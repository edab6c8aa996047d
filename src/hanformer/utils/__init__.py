"""Small helpers shared by every part of hanformer (files, configs, hashing)."""
