"""From a YAML file or a dict to validated spec objects and the things they build."""
