"""Framework adapters: specs from torch and Keras models, weights loaded into them
(also sharded, into torch.distributed models)."""
