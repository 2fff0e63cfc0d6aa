"""Device helpers: training switches PyTorch's cuDNN attention kernel off, and back."""

import pytest
import torch

from genseg_lib.device import training_attention


def test_training_attention_turns_cudnn_off_and_restores_it_even_after_an_error():
    torch.backends.cuda.enable_cudnn_sdp(True)
    with training_attention():
        assert torch.backends.cuda.cudnn_sdp_enabled() is False
    assert torch.backends.cuda.cudnn_sdp_enabled() is True
    with pytest.raises(KeyError), training_attention():
        raise KeyError("a failing step")
    assert torch.backends.cuda.cudnn_sdp_enabled() is True
    torch.backends.cuda.enable_cudnn_sdp(False)  # a caller that had it off keeps it off
    with training_attention():
        pass
    assert torch.backends.cuda.cudnn_sdp_enabled() is False
    torch.backends.cuda.enable_cudnn_sdp(True)
