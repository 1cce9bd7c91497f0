using System.Text;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Text;

namespace ModelOptPS.Engine.Tests.Text;

public class BpeTrainerTests : IDisposable
{
    private static readonly string[] Specials = ["<|endoftext|>"];

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static readonly Lazy<BpeModel> TrainedOnCorpus = new(() =>
        BpeTrainer.Train(CalibrationDocuments.BuiltIn(CorpusSplit.Train).Select(d => d.Text), vocabularySize: 512));

    private TextTokenizer Load(BpeModel model)
    {
        File.WriteAllText(_tmp.Combine("tokenizer.json"), TokenizerJson.Build(model.Vocabulary, model.Merges, Specials));
        return TextTokenizer.Load(_tmp.Path);
    }

    [Fact]
    public void ReachesTheVocabularySizeWithOneTokenPerMerge()
    {
        var model = TrainedOnCorpus.Value;
        Assert.Equal(512, model.Vocabulary.Count);
        Assert.Equal(256, model.Merges.Count);
        Assert.Equal(TokenizerJson.ByteVocabulary(), model.Vocabulary.Take(256));
        for (int i = 0; i < model.Merges.Count; i++) Assert.Equal(model.Merges[i].Left + model.Merges[i].Right, model.Vocabulary[256 + i]);
        Assert.Equal(model.Vocabulary.Count, model.Vocabulary.Distinct().Count());
    }

    [Fact]
    public void TrainedTokenizerEncodesAndDecodesTheHeldOutCorpusLosslesslyWithFewerTokensThanBytes()
    {
        using var tokenizer = Load(TrainedOnCorpus.Value);
        long tokens = 0, bytes = 0;
        foreach (var doc in CalibrationDocuments.BuiltIn(CorpusSplit.HeldOut))
        {
            int[] ids = tokenizer.Encode(doc.Text);
            Assert.Equal(doc.Text.Normalize(NormalizationForm.FormC), tokenizer.Decode(ids));
            Assert.All(ids, id => Assert.InRange(id, 0, 511));
            tokens += ids.Length;
            bytes += Encoding.UTF8.GetByteCount(doc.Text);
        }
        Assert.True(tokens < bytes * 0.6, $"{tokens} tokens for {bytes} bytes");
    }

    [Fact]
    public void MergesFollowPairFrequencyWithinPreTokens()
    {
        // Pre-tokens "ab", " ab", " abc", " bc": a+b occurs 3 times, " "+a and b+c twice each.
        var model = BpeTrainer.Train(["ab ab abc bc"], vocabularySize: 258);
        Assert.Equal(("a", "b"), model.Merges[0]);
        using var tokenizer = Load(model);
        Assert.Equal("ab ab abc bc", tokenizer.Decode(tokenizer.Encode("ab ab abc bc")));
        Assert.Equal([256], tokenizer.Encode("ab"));
    }

    [Fact]
    public void SameTextGivesTheSameMergesAndRareTextStopsEarly()
    {
        string[] text = ["the cat sat on the mat", "a 🙂 and 𠀀 too"];
        Assert.Equal(BpeTrainer.Train(text, 300).Merges, BpeTrainer.Train(text.Reverse(), 300).Merges);
        var tiny = BpeTrainer.Train(["xyz"], 1000);
        Assert.Empty(tiny.Merges); // every pair occurs once, below the default minimum of two
        using var tokenizer = Load(BpeTrainer.Train(text, 300));
        Assert.Equal("a 🙂 and 𠀀 too", tokenizer.Decode(tokenizer.Encode("a 🙂 and 𠀀 too")));
    }
}
