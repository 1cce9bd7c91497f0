using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Runs routed experts grouped by expert: the (token, slot) pairs are sorted by expert once, then each expert gathers
/// its tokens and runs one matmul per projection — never a loop over tokens. With all-experts calibration every
/// expert runs on every token (for the observer) and only its routed rows are kept.
/// </summary>
internal static class GroupedExperts
{
    /// <summary>x [N, H], routing weights and indices [N, k] → <c>Σ_j w_j · Expert_{idx_j}(x)</c> [N, H].</summary>
    public static Tensor Forward(ForwardContext context, ExpertWeights experts, Tensor x, Tensor weights, Tensor indices)
    {
        long topK = indices.shape[1];
        Tensor slots = indices.reshape(-1);
        var (_, order) = slots.sort(0, false, true);
        long[] counts = slots.bincount(null, experts.Count).cpu().data<long>().ToArray();
        Tensor tokenOfSlot = order.div(Scalars.Of((long)topK), rounding_mode: RoundingMode.floor);
        Tensor weightOfSlot = weights.reshape(-1).index_select(0, order).to(x.dtype).unsqueeze(1);

        Tensor output = zeros_like(x);
        long start = 0;
        for (int e = 0; e < experts.Count; e++)
        {
            long count = counts[e];
            if (count > 0 || context.AllExperts)
            {
                using var scope = NewDisposeScope();
                Tensor tokens = tokenOfSlot.narrow(0, start, count);
                Tensor y = context.AllExperts
                    ? Expert(context, experts, e, x).index_select(0, tokens)
                    : Expert(context, experts, e, x.index_select(0, tokens));
                output.index_add_(0, tokens, y.mul(weightOfSlot.narrow(0, start, count)), Scalars.One);
            }
            start += count;
        }
        return output;
    }

    /// <summary>One expert's SwiGLU on its gathered tokens; gate and up share one matmul unless their inputs differ.</summary>
    internal static Tensor Expert(ForwardContext context, ExpertWeights experts, int e, Tensor x)
    {
        Tensor gateUp = experts.GateUp[e];
        long intermediate = experts.Intermediate;
        LinearSite gateSite = experts.Names.Gate(e), upSite = experts.Names.Up(e);
        context.CheckFinite(x, gateSite);
        Tensor gateInput = context.Input(gateSite, x);
        Tensor upInput = gateSite == upSite ? gateInput : context.Input(upSite, x);
        Tensor gate, up;
        if (ReferenceEquals(gateInput, upInput))
        {
            Tensor both = nn.functional.linear(gateInput, gateUp);
            (gate, up) = (both.narrow(-1, 0, intermediate), both.narrow(-1, intermediate, intermediate));
        }
        else
        {
            gate = nn.functional.linear(gateInput, gateUp.narrow(0, 0, intermediate));
            up = nn.functional.linear(upInput, gateUp.narrow(0, intermediate, intermediate));
        }
        return context.Linear(experts.Names.Down(e), gate.silu().mul(up), experts.Down[e]);
    }
}
