"""Composition of layers, heads and embeddings with forward and backward in plain view."""

from __future__ import annotations

import numpy as np

from ._module import Module
from .layers import _Recurrent


class Sequential(Module):
    """Layers applied in order, e.g. ``Sequential(Embedding(V, 32), LSTM(32, 128), Linear(128, V))``.

    Recurrent layers (RNN, LSTM, GRU) take and return a state; the others map arrays.
    ``forward(x, state=None, lengths=None)`` returns (y, state) where state is a list
    with one entry per recurrent layer (each what that layer returns, e.g. (h, c) for an
    LSTM); pass it back in to continue a sequence. ``backward(dy, dstate=None)`` runs the
    layers' backward in reverse and returns (dx, dstate0) (dx is None after an
    Embedding). Parameters and gradients are the layers' own arrays under
    ``"<index>.<name>"``, as in torch.nn.Sequential's state dict."""

    def __init__(self, *layers):
        if not layers:
            raise ValueError("layers: expected at least one layer")
        for i, layer in enumerate(layers):
            if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
                raise TypeError(f"layers[{i}]: expected a layer with forward and backward, got {type(layer).__name__}")
        dtypes = {layer.dtype for layer in layers if isinstance(layer, Module)}
        if len(dtypes) > 1:
            raise TypeError(f"layers: mixed dtypes {sorted(map(str, dtypes))}")
        super().__init__(dtypes.pop() if dtypes else np.float32)
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            for name, p in getattr(layer, "params", {}).items():
                self.params[f"{i}.{name}"] = p
                self.grads[f"{i}.{name}"] = layer.grads[name]
        self.recurrent = [layer for layer in self.layers if isinstance(layer, _Recurrent)]

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __call__(self, x, state=None, lengths=None):
        return self.forward(x, state, lengths)

    def _per_recurrent(self, name, value):
        if value is None:
            return [None] * len(self.recurrent)
        value = list(value)
        if len(value) != len(self.recurrent):
            raise ValueError(f"{name}: expected one entry per recurrent layer ({len(self.recurrent)}), "
                             f"got {len(value)}")
        return value

    def forward(self, x, state=None, lengths=None):
        """Run the layers in order.

        Args:
            x: the first layer's input, e.g. integer ids ``[T, B]`` for an Embedding or
                ``[T, B, I]`` of the model's dtype for a recurrent layer.
            state: None (zeros), or a list with one initial state per recurrent layer
                (each what that layer's ``forward`` takes as ``h0``; None for zeros).
            lengths: ``B`` sequence lengths, passed to every recurrent layer.

        Returns:
            (y, state): the last layer's output and the list of the recurrent layers'
            final states, to pass back in to continue the sequences.

        Raises:
            ValueError: ``state`` with another number of entries than recurrent layers;
                and whatever a layer raises for its input (TypeError or ValueError
                naming the argument).
        """
        states = self._per_recurrent("state", state)
        new, r = [], 0
        for layer in self.layers:
            if isinstance(layer, _Recurrent):
                x, s = layer.forward(x, states[r], lengths)
                new.append(s)
                r += 1
            else:
                x = layer.forward(x)
        return x, new

    def backward(self, dy, dstate=None):
        """Backpropagate through the last forward, layer by layer in reverse.

        Args:
            dy: gradient of the loss with respect to the output (its shape), or None.
            dstate: None, or a list with one final-state gradient per recurrent layer
                (each what that layer's ``backward`` takes as ``dh_n``).

        Returns:
            (dx, dstate0): the gradient with respect to the input (None after an
            Embedding) and the list of initial-state gradients. Every parameter
            gradient is added into ``grads``.

        Raises:
            ValueError: ``dstate`` with another number of entries than recurrent
                layers.
            RuntimeError: no saved forward pass.
        """
        dstates = self._per_recurrent("dstate", dstate)
        d0 = [None] * len(self.recurrent)
        r = len(self.recurrent)
        for layer in reversed(self.layers):
            if isinstance(layer, _Recurrent):
                r -= 1
                dy, d0[r] = layer.backward(dy, dstates[r])
            else:
                dy = layer.backward(dy)
        return dy, d0

    def train(self, mode=True):
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(mode)
        return super().train(mode)

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
