using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Turns checkpoint tensors into torch tensors in the compute dtype on the device, straight from the memory map, in
/// bands of rows so a tensor larger than 2 GiB (fused experts) never needs one span or a second full-size copy.
/// </summary>
internal sealed class WeightLoader(CheckpointReader checkpoint, ScalarType computeType, Device device, WeightTransform? transform)
{
    private const long BandBytes = 64L << 20;

    public ScalarType ComputeType => computeType;

    public Device Device => device;

    public bool Has(string name) => checkpoint.Tensors.ContainsKey(name);

    public long[] Shape(string name) => checkpoint.GetTensor(name).Info.Shape;

    /// <summary>A parameter that is not a Linear weight (norm, conv, A_log…), in <paramref name="type"/> (default: compute dtype).</summary>
    public Tensor Parameter(MaterializedWeights owner, string name, ScalarType? type = null)
    {
        using var scope = NewDisposeScope();
        return owner.Own(Read(checkpoint.GetTensor(name), type ?? computeType));
    }

    /// <summary>A Linear (weight and optional bias), through the weight transform.</summary>
    public LinearWeights Linear(MaterializedWeights owner, string module) => Linear(owner, module, module + ".weight");

    /// <summary>A Linear whose weight lives under another name (lm_head tied to the embedding table).</summary>
    public LinearWeights Linear(MaterializedWeights owner, string module, string weightName)
    {
        string biasName = module + ".bias";
        Tensor weight = Transformed(owner, module, weightName);
        Tensor? bias = Has(biasName) ? Parameter(owner, biasName) : null;
        return new LinearWeights(module, weight, bias);
    }

    /// <summary>A fused 3-D expert parameter (<c>gate_up_proj</c>, <c>down_proj</c>), through the weight transform.</summary>
    public Tensor FusedExpertParameter(MaterializedWeights owner, string name) => Transformed(owner, name, name);

    /// <summary>Copies one Linear weight (through the transform) into <paramref name="destination"/>, a slice of a stacked tensor.</summary>
    public void LinearInto(Tensor destination, string module)
    {
        using var scope = NewDisposeScope();
        Tensor weight = Read(checkpoint.GetTensor(module + ".weight"), computeType);
        destination.copy_(transform?.Invoke(module, weight) ?? weight);
    }

    private Tensor Transformed(MaterializedWeights owner, string transformName, string tensorName)
    {
        using var scope = NewDisposeScope();
        Tensor weight = Read(checkpoint.GetTensor(tensorName), computeType);
        return owner.Own(transform?.Invoke(transformName, weight) ?? weight);
    }

    /// <summary>Reads a tensor band by band along its first dimension, converting each band into the destination.</summary>
    private Tensor Read(TensorRef source, ScalarType type)
    {
        TensorInfo info = source.Info;
        ScalarType sourceType = SourceType(info);
        long[] shape = info.Shape.Length == 0 ? [1] : info.Shape;
        Tensor result = empty(shape, type);
        long rows = shape[0];
        long rowBytes = rows == 0 ? 0 : info.ByteLength / rows;
        long rowsPerBand = Math.Max(1, BandBytes / Math.Max(1, rowBytes));
        for (long row = 0; row < rows; row += rowsPerBand)
        {
            long count = Math.Min(rowsPerBand, rows - row);
            using var band = result.narrow(0, row, count);
            using var bytes = source.File.Read(info, row * rowBytes, checked((int)(count * rowBytes)));
            HugePages.Advise(band.bytes);
            if (sourceType == type)
            {
                bytes.Span.CopyTo(band.bytes);
                continue;
            }
            using Tensor staging = empty(band.shape, sourceType);
            bytes.Span.CopyTo(staging.bytes);
            band.copy_(staging);
        }
        if (info.Shape.Length == 0) result = result.reshape([]);
        return device.type == DeviceType.CPU ? result : result.to(device);
    }

    /// <summary>The torch dtype of a checkpoint tensor.</summary>
    public static ScalarType SourceType(TensorInfo info) => info.DType switch
    {
        DType.BF16 => ScalarType.BFloat16,
        DType.F16 => ScalarType.Float16,
        DType.F32 => ScalarType.Float32,
        _ => throw new InvalidOperationException($"Tensor '{info.Name}' is {info.DType}; the forward pass reads BF16, F16 or F32 weights."),
    };
}
