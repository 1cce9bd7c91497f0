using System.Diagnostics;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Runs a checkpoint's text model in TorchSharp, layer by layer from the memory-mapped weights: each decoder layer is
/// materialised (converted to the compute dtype), every sequence's hidden state passes through it, and it is freed
/// before the next is read, so memory is one layer's weights plus the activations. An
/// <see cref="IActivationObserver"/> sees every Linear's input. Not thread-safe: one run at a time.
/// </summary>
public sealed class ModelRunner : IDisposable
{
    private readonly HFModel _model;
    private readonly RunnerOptions _options;
    private readonly ModelBlueprint _blueprint;
    private readonly WeightLoader _loader;
    private readonly Device _device;
    private bool _disposed;

    private ModelRunner(HFModel model, RunnerOptions options, ModelBlueprint blueprint, Device device, ScalarType computeType)
    {
        _model = model;
        _options = options;
        _blueprint = blueprint;
        _device = device;
        _loader = new WeightLoader(model.Checkpoint, computeType, device, options.WeightTransform);
    }

    /// <summary>Bytes of weights materialised now and at most (one layer's at a time in a layer-by-layer run).</summary>
    public WeightMemory WeightMemory { get; } = new();

    public int LayerCount => _blueprint.Layers.Count;

    /// <summary>
    /// Plans the model's forward pass (no weight is read) and loads libtorch.
    /// </summary>
    /// <exception cref="ModelOptException">ForwardNotSupported for a family or layer it cannot run; DeviceNotAvailable.</exception>
    public static ModelRunner Create(HFModel model, RunnerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new RunnerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TokensPerChunk, 1);
        if (options.Threads is { } threadCount) ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        var blueprint = ModelBlueprint.Plan(model);
        TorchRuntime.EnsureLoaded();
        if (options.Threads is { } threads) set_num_threads(threads);
        var device = OpenDevice(options.Device, model.Path);
        var type = options.ComputeDType == ComputeDType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        return new ModelRunner(model, options, blueprint, device, type);
    }

    /// <summary>
    /// Runs every sequence through the model layer by layer: embeds all of them, then for each decoder layer
    /// materialises only that layer's weights, passes every hidden state through it (the observer sees each Linear's
    /// input), and frees it. With <paramref name="onLogits"/>, the final norm and lm_head run too and each sequence's
    /// logits [T, V] are handed over (valid during the call only; the lm_head input is observed as
    /// <c>lm_head.input_quantizer</c>).
    /// With <paramref name="afterLayer"/>, it is called with each layer's index once the layer ran; when it returns true
    /// the layer runs again from the same input, with its weights materialised anew (the <see cref="RunnerOptions.WeightTransform"/>
    /// sees them again) and no observer, and the next layer gets that re-run's output (layerwise GPTQ: the next layer is
    /// calibrated on the quantized layer's output, as ModelOpt's <c>get_qdq_activations_from_prev_layer</c>).
    /// </summary>
    /// <exception cref="ModelOptException">NonFiniteActivation naming the layer and module; TokenOutOfRange.</exception>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellationToken"/> fires (between sequences and layers).</exception>
    public void RunLayerwise(
        IReadOnlyList<long[]> sequences,
        IActivationObserver? observer,
        IProgress<RunnerProgress>? progress = null,
        CancellationToken cancellationToken = default,
        Action<int, Tensor>? onLogits = null,
        Func<int, bool>? afterLayer = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) return;
        var clock = Stopwatch.StartNew();
        var batch = new SequenceBatch(sequences);
        var context = new ForwardContext(_model.Path, observer, _options.ActivationTransform, _options.AllExperts);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        Tensor hidden = TokenEmbedding.Lookup(_model.Checkpoint.GetTensor(_blueprint.Layout.EmbedTokens), batch.Tokens, _loader.ComputeType, _device);
        progress?.Report(new RunnerProgress(0, LayerCount, batch.TokenCount, clock.Elapsed));
        foreach (var layer in _blueprint.Layers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            context.Where = $"decoder layer {layer.Index}";
            using Tensor? input = afterLayer is null ? null : hidden.clone();
            RunLayer(layer, context, hidden, batch, cancellationToken);
            if (afterLayer?.Invoke(layer.Index) == true)
            {
                hidden.copy_(input!);
                var quiet = new ForwardContext(_model.Path, null, _options.ActivationTransform, false) { Where = context.Where };
                RunLayer(layer, quiet, hidden, batch, cancellationToken);
            }
            progress?.Report(new RunnerProgress(layer.Index + 1, LayerCount, batch.TokenCount, clock.Elapsed));
        }
        if (onLogits is not null) RunHead(context, hidden, batch, onLogits, cancellationToken);
    }

    private void RunLayer(DecoderLayerBlueprint layer, ForwardContext context, Tensor hidden, SequenceBatch batch, CancellationToken cancellationToken)
    {
        using var weights = new MaterializedWeights(WeightMemory);
        WeightMemory.CountLayer();
        layer.Build(_loader, weights, _blueprint.Rope).Forward(context, hidden, batch, _options.TokensPerChunk, cancellationToken);
    }

    /// <summary>The logits [T, V] of one sequence (compute dtype; the caller disposes them). Reads every layer once.</summary>
    public Tensor Forward(long[] tokens, IActivationObserver? observer = null)
    {
        Tensor? logits = null;
        RunLayerwise([tokens], observer, onLogits: (_, l) => logits = l.clone().DetachFromDisposeScope());
        return logits!;
    }

    private void RunHead(ForwardContext context, Tensor hidden, SequenceBatch batch, Action<int, Tensor> onLogits, CancellationToken cancellationToken)
    {
        context.Where = "final norm and lm_head";
        using var weights = new MaterializedWeights(WeightMemory);
        Tensor norm = _loader.Parameter(weights, _blueprint.Layout.FinalNorm);
        LinearWeights head = _loader.Linear(weights, "lm_head", _blueprint.Layout.LmHeadWeight);
        for (int s = 0; s < batch.Count; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            Tensor x = RmsNorm.Apply(hidden.narrow(0, batch.Offsets[s], batch.Lengths[s]), norm, _blueprint.Eps, _blueprint.NormStyle);
            onLogits(s, context.Linear(head, x));
        }
    }

    private static Device OpenDevice(string name, string folder)
    {
        if (name.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !cuda.is_available())
            throw new ModelOptException(ExecutionErrors.DeviceNotAvailable, ErrorKind.InvalidArgument,
                $"Device '{name}' was asked for, but the libtorch this module loaded has no usable CUDA device; use 'cpu' or install a CUDA build of libtorch.", folder);
        return torch.device(name);
    }

    public void Dispose() => _disposed = true;
}
