using System.Text.Json.Nodes;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Text;

/// <summary>The shipped sample (sample/qwen3-moe-tiny): a Qwen3-MoE checkpoint the module can import, with a working tokenizer and a trained record.</summary>
public class SampleModelTests
{
    private const long MaxFolderBytes = 20L * 1000 * 1000;

    private static readonly string Folder = Path.Combine(RepositoryRoot(), "sample", "qwen3-moe-tiny");

    [Fact]
    public void ImportsAsAQwen3MoeCheckpointOfTheDocumentedShape()
    {
        using var model = ModelImporter.Import(Folder);
        Assert.Equal("Qwen3Moe", model.Family);
        Assert.Equal("Qwen3MoeForCausalLM", model.Architecture);
        Assert.Equal(4, model.LayerCount);
        Assert.Equal(16, model.ExpertCount);
        Assert.Equal(4, model.ExpertsPerToken);
        Assert.Equal(256, model.HiddenSize);
        Assert.Equal(2048, model.VocabSize);
        Assert.Equal(DType.BF16, model.SourceDType);
        Assert.Empty(model.Warnings);
        // Embeddings, final norm, lm_head; per layer q/k/v/o, q/k norms, two layer norms, the router and 16 × 3 expert projections.
        Assert.Equal(3 + 4 * (6 + 2 + 1 + 16 * 3), model.TensorCount);
        Assert.True(model.SizeOnDisk < MaxFolderBytes, $"model.safetensors is {model.SizeOnDisk} bytes");
        Assert.True(new DirectoryInfo(Folder).EnumerateFiles().Sum(f => f.Length) < MaxFolderBytes);
    }

    [Fact]
    public void TokenizerLoadsAndRoundTripsHeldOutText()
    {
        using var tokenizer = TextTokenizer.Load(Folder);
        Assert.Equal(2045, tokenizer.EosId);
        Assert.Equal(ChatRenderer.Format.ChatMl, ChatRenderer.Detect(tokenizer.ChatTemplate));
        foreach (var doc in CalibrationDocuments.BuiltIn(CorpusSplit.HeldOut).Take(8))
        {
            int[] ids = tokenizer.Encode(doc.Text);
            Assert.All(ids, id => Assert.InRange(id, 0, 2047));
            Assert.Equal(doc.Text.Normalize(System.Text.NormalizationForm.FormC), tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void TrainingRecordShowsATrainedModel()
    {
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "training.json")))!;
        double perplexity = record["heldout"]!["perplexity"]!.GetValue<double>();
        double loss = record["heldout"]!["loss"]!.GetValue<double>();
        Assert.True(double.IsFinite(perplexity) && perplexity > 1);
        Assert.Equal(Math.Exp(loss), perplexity, 0.01 * perplexity);
        // A uniform guess over 2048 tokens has perplexity 2048; trained, it is a small fraction of that.
        Assert.True(perplexity < 2048 / 10.0, $"held-out perplexity {perplexity}");
        Assert.True(double.IsFinite(record["training"]!["final_train_loss"]!.GetValue<double>()));
        Assert.StartsWith("dotnet run --project tools/TrainSample", record["command"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ModelOptPS.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"No ModelOptPS.sln above {AppContext.BaseDirectory}.");
    }
}
