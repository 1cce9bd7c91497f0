namespace ModelOptPS.Engine.Execution;

/// <summary>
/// A block of a decoder layer as planned from the checkpoint and config, before any weight is read: the tensors it
/// will read, and how to build the running block from them.
/// </summary>
internal interface IBlockBlueprint
{
    IEnumerable<string> Tensors { get; }

    /// <summary>The sets of this block's Linears that read one tensor (sets of two or more only).</summary>
    IEnumerable<SharedInput> SharedInputs { get; }
}

internal interface IMixerBlueprint : IBlockBlueprint
{
    ISequenceMixer Build(WeightLoader loader, MaterializedWeights owner, RotaryEmbedding rope);
}

internal interface IFeedForwardBlueprint : IBlockBlueprint
{
    IFeedForward Build(WeightLoader loader, MaterializedWeights owner);
}
