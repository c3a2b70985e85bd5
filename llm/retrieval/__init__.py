"""The knowledge base: chunking, embedding and search."""

from llm.retrieval.chunking import Chunk, chunk_file, chunk_markdown
from llm.retrieval.index import Embedder, KBStore, KnowledgeBase, SyncReport

__all__ = [
    "Chunk",
    "Embedder",
    "KBStore",
    "KnowledgeBase",
    "SyncReport",
    "chunk_file",
    "chunk_markdown",
]
