"""The policy knowledge base: documents in SQL, hybrid retrieval with citations and honest abstention."""
