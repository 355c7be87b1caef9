"""Export and import of conversations: the file format, reading uploads and Markdown; no ORM here."""
