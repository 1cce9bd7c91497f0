using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Model;

/// <summary>
/// A Hugging Face checkpoint as a live object: what it is (family, size, dtype), its modules, and the open
/// checkpoint whose tensors later stages read. Built from headers alone; tensor data stays on disk until used.
/// Later stages attach their results (plan, calibration statistics) to this object as it flows down the pipeline.
/// </summary>
public sealed class HFModel : IDisposable
{
    private readonly List<string> _warnings;

    internal HFModel(CheckpointReader checkpoint, ArchitectureRegistry.Resolution resolution,
        IReadOnlyList<ModelModule> modules, List<string> warnings)
    {
        Checkpoint = checkpoint;
        Spec = resolution.Spec;
        Architecture = resolution.Architecture;
        ArchitectureSource = resolution.How;
        Modules = modules;
        _warnings = warnings;
        var config = checkpoint.Config;
        var textLayers = modules.Where(m => m.Section == ModelSection.Text && m.Layer is not null)
            .Select(m => m.Layer!.Value).Distinct().Count();
        LayerCount = config.LayerCount ?? textLayers;
        ParameterCount = checkpoint.Tensors.Values.Sum(t => t.Info.ElementCount);
        SourceDType = checkpoint.Tensors.Values
            .Where(t => DTypes.IsFloatingSource(t.Info.DType))
            .GroupBy(t => t.Info.DType)
            .OrderByDescending(g => g.Sum(t => t.Info.ByteLength))
            .Select(g => (DType?)g.Key)
            .FirstOrDefault();
    }

    public string Path => Checkpoint.Folder;

    /// <summary>The checkpoint folder's name.</summary>
    public string Name => System.IO.Path.GetFileName(Path.TrimEnd('/', '\\'));

    /// <summary>The architecture class name (from config, or resolved from model_type when the config has none).</summary>
    public string? Architecture { get; }

    /// <summary>How <see cref="Architecture"/> was decided.</summary>
    public string ArchitectureSource { get; }

    /// <summary>The config's own <c>architectures[0]</c> (null when missing or null in the file).</summary>
    public string? DeclaredArchitecture => Checkpoint.Config.Architecture;

    public string Family => Spec.Family;

    public bool IsKnownArchitecture => Spec.IsKnown;

    public ArchitectureSpec Spec { get; }

    public string? ModelType => Checkpoint.Config.ModelType;

    public int LayerCount { get; }

    /// <summary>Routed experts per MoE layer (0 for dense models).</summary>
    public int ExpertCount => Checkpoint.Config.ExpertCount ?? 0;

    public int ExpertsPerToken => Checkpoint.Config.ExpertsPerToken ?? 0;

    public int? HiddenSize => Checkpoint.Config.HiddenSize;

    public int? VocabSize => Checkpoint.Config.VocabSize;

    public long ParameterCount { get; }

    /// <summary>The floating dtype holding most of the bytes (the weights' dtype).</summary>
    public DType? SourceDType { get; }

    public long SizeOnDisk => Checkpoint.SizeOnDisk;

    public int TensorCount => Checkpoint.Tensors.Count;

    public int ShardCount => Checkpoint.Shards.Count;

    public IReadOnlyList<ModelModule> Modules { get; }

    /// <summary>Everything unusual found while importing (never silently ignored).</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    public ModelConfig Config => Checkpoint.Config;

    /// <summary>The quantization plan attached by Set-QuantConfig, or null.</summary>
    public Quantization.QuantPlan? Plan { get; set; }

    /// <summary>The id of the error every step that needs a plan reports when there is none.</summary>
    public const string NoQuantPlan = nameof(NoQuantPlan);

    /// <summary><see cref="Plan"/>, or the <see cref="NoQuantPlan"/> error when Set-QuantConfig has not run.</summary>
    public Quantization.QuantPlan RequirePlan() => Plan ?? throw new Errors.ModelOptException(NoQuantPlan, Errors.ErrorKind.InvalidOperation,
        $"Model '{Name}' has no quantization plan yet; pipe it through Set-QuantConfig first.", Path);

    /// <summary>Activation statistics attached by Invoke-Calibration, or null.</summary>
    public Calibration.CalibrationStatistics? Statistics { get; set; }

    /// <summary>
    /// GPTQ's quantized weights, keyed by export unit (<c>…self_attn.q_proj</c>, <c>…experts.3.gate_proj</c>), set by
    /// Invoke-Calibration when the plan's algorithm is GPTQ; null otherwise. Export and quality measurement write and
    /// measure exactly these.
    /// </summary>
    public IReadOnlyDictionary<string, Calibration.GptqSolution>? WeightSolutions { get; set; }

    /// <summary>The report of the calibration run that produced <see cref="Statistics"/>, or null.</summary>
    public Calibration.CalibrationReport? CalibrationReport { get; set; }

    public CheckpointReader Checkpoint { get; }

    /// <summary>Module count per kind, e.g. for a summary line.</summary>
    public IReadOnlyDictionary<ModuleKind, int> ModuleCounts =>
        Modules.GroupBy(m => m.Kind).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());

    public string ModuleSummary => string.Join(", ", ModuleCounts.Select(kv => $"{kv.Key} {kv.Value}"));

    public override string ToString() => $"{Name} ({Architecture ?? Family})";

    public void Dispose() => Checkpoint.Dispose();
}
