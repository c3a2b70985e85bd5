"""Cloud models over OpenAI-compatible Chat Completions: chain, retries, budget."""
