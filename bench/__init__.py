"""`make bench`: each figure beside a ceiling measured in the same run, and their ratio."""
