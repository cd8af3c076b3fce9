"""Translation of chat, Q&A and captions: provider interface, providers, cache (not built yet)."""
