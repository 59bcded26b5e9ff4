"""Identity inference for FLUX.2 [klein]: PuLID-style ID tokens through forward hooks, Klein's native
references, and face-embedding identity metrics. Heavy modules (torch, diffusers, insightface,
timm) are imported by the submodules only; this package's top level stays light."""
