"""Server-rendered SVG charts with a title, a description and the numbers in a table."""
