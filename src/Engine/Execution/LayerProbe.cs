using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Execution;

/// <summary>What the blueprints read while planning: the checkpoint's tensor names and shapes, the config, the family.</summary>
internal sealed class LayerProbe(CheckpointReader checkpoint, ArchitectureSpec spec)
{
    public ModelConfig Config => checkpoint.Config;

    public ArchitectureSpec Spec => spec;

    public double Eps => Config.RmsNormEps ?? 1e-6;

    public bool Has(string name) => checkpoint.Tensors.ContainsKey(name);

    public long[] Shape(string name) => checkpoint.GetTensor(name).Info.Shape;

    /// <summary>An integer the text config must have.</summary>
    public int Require(string key) => Config.GetInt(key) ?? throw Fail($"config.json has no '{key}'.");

    /// <summary>Names of <paramref name="linear"/>'s weight and, when present, bias.</summary>
    public IEnumerable<string> LinearTensors(string linear) =>
        Has(linear + ".bias") ? [linear + ".weight", linear + ".bias"] : [linear + ".weight"];

    public Errors.ModelOptException Fail(string what) => ExecutionErrors.NotSupported(checkpoint.Folder, what);
}
