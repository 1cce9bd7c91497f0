using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>The consumers' exclusion matching (consumers.md §1.2, §2.2): what every engine honours, and what only some apply.</summary>
public sealed class ExclusionListTests
{
    [Theory]
    [InlineData("lm_head", "lm_head")]
    [InlineData("model.visual*", "model.visual.blocks.0.attn.qkv")]
    [InlineData("mtp*", "mtp.layers.0.mlp.experts")]
    [InlineData("*.mlp.gate", "model.layers.3.mlp.gate")]
    [InlineData("model.layers.?.self_attn.[qk]_proj", "model.layers.4.self_attn.k_proj")]
    public void ExactNamesAndWildcardsListAModuleForEveryEngine(string entry, string module)
    {
        var list = new ExclusionList([entry], QuantFormat.ModelOpt);
        Assert.Equal(entry, list.Listing(module));
        Assert.Equal(entry, list.Excluding(module));
    }

    [Theory]
    [InlineData("model.layers.1", "model.layers.12.mlp.down_proj", "substring")]
    [InlineData("mlp.gate", "model.layers.0.mlp.gate", "substring")]
    [InlineData("model.layers.0.mlp.experts.3.gate_proj", "model.layers.0.mlp.experts.5.down_proj", "every expert")]
    public void SubstringAndExpertRulesExcludeOnlyInVllm(string entry, string module, string how)
    {
        var list = new ExclusionList([entry], QuantFormat.ModelOpt);
        Assert.Null(list.Listing(module));
        Assert.Equal(entry, list.Excluding(module));
        Assert.Contains(how, list.Explain(entry, module), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("model.layers.0.mlp.gate", "model.layers.0.mlp.experts.0.gate_proj")]
    [InlineData("model.layers.1.mlp.experts.0.up_proj", "model.layers.0.mlp.experts.0.up_proj")]
    [InlineData("visual*", "model.visual.merger.linear_fc1")]
    public void UnrelatedEntriesMatchNothing(string entry, string module) =>
        Assert.False(new ExclusionList([entry], QuantFormat.ModelOpt).Matches(entry, module));

    [Theory]
    [InlineData("re:.*mlp.gate$", "model.layers.0.mlp.gate", true)]
    [InlineData("re:.*mlp.gate$", "model.layers.0.mlp.gate_proj", false)]
    [InlineData("re:mlp.gate", "model.layers.0.mlp.gate", false)]
    [InlineData("re:model.visual.*", "model.visual.blocks.0.attn.qkv", true)]
    [InlineData("lm_head", "lm_head", true)]
    [InlineData("lm", "lm_head", false)]
    [InlineData("model.visual*", "model.visual.blocks.0.attn.qkv", false)]
    [InlineData("re:([", "anything", false)]
    public void CompressedTensorsMatchesExactNamesAndRegexesAnchoredAtTheStart(string entry, string module, bool matches)
    {
        var list = new ExclusionList([entry], QuantFormat.CompressedTensors);
        Assert.Equal(matches, list.Matches(entry, module));
        Assert.Equal(matches ? entry : null, list.Listing(module));
    }
}
