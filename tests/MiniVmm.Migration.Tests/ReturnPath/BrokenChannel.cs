namespace MiniVmm.Migration.Tests.ReturnPath;

/// <summary>A return-path channel whose every write fails as a broken pipe would.</summary>
internal sealed class BrokenChannel : MemoryStream
{
    public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("broken pipe (injected)");
}
