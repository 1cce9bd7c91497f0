namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Linears that read one and the same tensor in the forward pass, named as the export writes them (a fused expert's
/// gate and up halves as <c>&lt;experts&gt;.&lt;e&gt;.gate_proj</c> / <c>up_proj</c>). ModelOpt's export finds the
/// same sets with a dummy forward (forward hooks keyed by the input tensor) and gives the quantized members of each one
/// shared scales; this is that knowledge stated by the blocks that do the reading.
/// </summary>
internal sealed record SharedInput(IReadOnlyList<string> Modules);
