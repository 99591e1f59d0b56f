"""Lab 10: a real LLM offline — SmolLM2-135M: the Q4_1 origin of its weights, PPL / KL / top-1 and
completions per scheme, GGUF formats, activation outliers and smoothing, block sensitivity, decode speed,
and llama.cpp's Q8_0 as a coding exercise."""
