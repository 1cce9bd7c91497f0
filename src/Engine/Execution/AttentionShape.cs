using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// The geometry of a softmax-attention layer. <see cref="OutputGate"/>: q_proj also produces a per-head gate, rows
/// <c>[q_h0 | g_h0 | q_h1 | g_h1 …]</c>, and the output is multiplied by <c>sigmoid(gate)</c> (Qwen3-Next, Qwen3.5).
/// </summary>
internal sealed record AttentionShape(int Heads, int KvHeads, int HeadDim, bool OutputGate, NormStyle QkNormStyle, double Eps, int? SlidingWindow);
