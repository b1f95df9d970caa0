"""Serving compressed models: engine-independent planning (``plan``) and the vLLM plugin (``vllm``).

A serving engine must know, when it schedules a request, how many tokens every layer will
store. For the score-free methods that is a function of the image grids alone, computed here by
the same selector the Hugging Face engine uses, so both engines keep the same tokens.
"""
