"""The knowledge base: chunking, embedding and search."""
