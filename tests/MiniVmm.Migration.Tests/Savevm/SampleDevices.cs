using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>A VMState device with a counter, an offset and a register file; section "counter", version 2.</summary>
internal sealed class CounterDevice : ISaveStateDevice
{
    public static readonly VMStateDescription<CounterDevice> Vmsd =
        VMStateDescription<CounterDevice>.Build("counter", version: 2, minimumVersion: 1)
            .UInt32("count", device => ref device.Count)
            .Int64("offset", device => ref device.Offset)
            .Buffer("registers", device => device.Registers)
            .Done();

    /// <summary>Body size on the wire: be32 + be64 + 8 bytes.</summary>
    public const int BodyLength = 4 + 8 + 8;

    public uint Count;
    public long Offset;
    public byte[] Registers = new byte[8];

    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Vmsd, this);
}

/// <summary>A VMState device with a flag, a mode and four levels; section "latch", version 1.</summary>
internal sealed class LatchDevice : ISaveStateDevice
{
    public static readonly VMStateDescription<LatchDevice> Vmsd =
        VMStateDescription<LatchDevice>.Build("latch", version: 1, minimumVersion: 1)
            .Bool("closed", device => ref device.Closed)
            .UInt16("mode", device => ref device.Mode)
            .Int32Array("levels", device => device.Levels)
            .Done();

    /// <summary>Body size on the wire: u8 + be16 + 4 × be32.</summary>
    public const int BodyLength = 1 + 2 + 16;

    public bool Closed;
    public ushort Mode;
    public int[] Levels = new int[4];

    public void Register(SaveStateRegistry registry) => registry.RegisterVMState(Vmsd, this);
}

/// <summary>
/// A VMState device whose section is sent only while <see cref="Needed"/> is true; section
/// "optional", version 1, body be32.
/// </summary>
internal sealed class OptionalDevice
{
    public static readonly VMStateDescription<OptionalDevice> Vmsd =
        VMStateDescription<OptionalDevice>.Build("optional", version: 1, minimumVersion: 1)
            .Needed(device => device.Needed)
            .UInt32("value", device => ref device.Value)
            .Done();

    public const int BodyLength = 4;

    public bool Needed;
    public uint Value;
}

/// <summary>
/// A live (iterative) device: its payload goes out in chunks of <see cref="ChunkSize"/> bytes,
/// one chunk per iteration, the rest at completion. Bodies: u8 kind (1 = size, 2 = chunk),
/// then be32 size or be32 length + bytes.
/// </summary>
internal sealed class ChunkedBlobHandlers : ISaveVmHandlers
{
    public const int ChunkSize = 16;
    private const byte SizeRecord = 1;
    private const byte ChunkRecord = 2;

    private int _sent;
    private int _received;

    public ChunkedBlobHandlers(int size) => Payload = new byte[size];

    public byte[] Payload { get; private set; }

    public int LoadStateCalls { get; private set; }

    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

    public void SaveSetup(MigrationStreamWriter stream)
    {
        _sent = 0;
        stream.PutByte(SizeRecord);
        stream.PutBe32((uint)Payload.Length);
    }

    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        WriteChunk(stream, Math.Min(ChunkSize, Payload.Length - _sent));
        return _sent == Payload.Length ? IterationOutcome.Finished : IterationOutcome.MoreData;
    }

    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream) => WriteChunk(stream, Payload.Length - _sent);

    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        LoadStateCalls++;
        byte kind = stream.GetByte();
        if (kind == SizeRecord)
        {
            Payload = new byte[stream.GetBe32()];
            _received = 0;
            return;
        }

        if (kind != ChunkRecord)
        {
            throw new InvalidDataException($"blob: unknown record kind {kind}");
        }

        int length = (int)stream.GetBe32();
        stream.ReadExactly(Payload.AsSpan(_received, length));
        _received += length;
    }

    private void WriteChunk(MigrationStreamWriter stream, int length)
    {
        stream.PutByte(ChunkRecord);
        stream.PutBe32((uint)length);
        stream.PutBuffer(Payload.AsSpan(_sent, length));
        _sent += length;
    }
}
