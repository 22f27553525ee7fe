"""Wire formats. Bodies are read into plain dicts following OMA REST NetAPI Common's XML⇄JSON
rules (a repeated element is a list, simple values are strings) and written back out of them."""
