namespace ModelOptPS.Engine.Quantization;

/// <summary>One expert's projection inside a fused experts container (gate_up_proj or down_proj of expert e).</summary>
public sealed record ExpertUnitPlan(int Expert, string Projection, QuantDecision Decision, QuantizerState Weight, QuantizerState Input)
{
    public string Reason => Weight.Explain();
}
