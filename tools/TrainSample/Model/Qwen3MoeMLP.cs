using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>transformers' Qwen3MoeMLP, one expert: down_proj(silu(gate_proj(x)) ⊙ up_proj(x)), no biases.</summary>
internal sealed class Qwen3MoeMLP : nn.Module
{
    private readonly Linear _gate, _up, _down;

    public Qwen3MoeMLP(int hidden, int width) : base(nameof(Qwen3MoeMLP))
    {
        _gate = nn.Linear(hidden, width, hasBias: false);
        _up = nn.Linear(hidden, width, hasBias: false);
        _down = nn.Linear(width, hidden, hasBias: false);
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public Tensor Forward(Tensor x) => _down.forward(nn.functional.silu(_gate.forward(x)).mul(_up.forward(x)));
}
