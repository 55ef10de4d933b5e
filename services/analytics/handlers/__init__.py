"""One read use case per file: the answers the routes give."""
