"""OmniSIFT token compression for Qwen2.5-Omni, as a PyTorch library (no Ray, Redis or HTTP)."""
