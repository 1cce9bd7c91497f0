namespace ModelOptPS.Engine.Verification;

/// <summary>The verdict of one check. Only <see cref="Fail"/> makes a checkpoint fail.</summary>
public enum CheckStatus
{
    /// <summary>Meets the contract.</summary>
    Pass,

    /// <summary>Loads and computes correctly, but something deserves a look (or could not be verified).</summary>
    Warn,

    /// <summary>Breaks the contract: an engine would refuse it or compute something else.</summary>
    Fail,
}

/// <summary>What a check is about: the checkpoint as a whole, one of its files, an exclusion or quantized_layers entry, or a module.</summary>
public enum CheckScope
{
    Checkpoint,
    Config,
    Index,
    Shard,
    Exclusion,
    QuantizedLayer,
    File,
    Module,
}
