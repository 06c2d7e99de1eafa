using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// An emulated DMA engine with migratable state: <see cref="DmaEngineOptions.StateSizeMiB"/> MiB of
/// internal memory in 64 KiB chunks plus a register file. While it may initiate DMA (RUNNING and
/// PRE_COPY only: never in the P2P states, STOP, STOP_COPY, RESUMING or ERROR) each DMA operation
/// changes a block of one state chunk and writes that block into guest memory, reported through DMA
/// dirty logging. Precopy data is the whole state first (initial bytes), then the chunks changed
/// since they were last sent (dirty bytes); the stop-copy tail is the remaining chunks, the
/// registers and an end marker. <see cref="StateDigest"/> compares a source with its destination.
/// </summary>
public sealed class DmaEngineDevice : VfioDevice
{
    /// <summary>Size of a state chunk, the unit of dirty tracking and of the migration data.</summary>
    public const int ChunkSize = 64 * 1024;

    private const int ChunkRecordSize = DmaEngineStateFormat.RecordHeaderSize + ChunkSize;

    private readonly object data = new();
    private readonly IGuestMemoryAccess guestMemory;
    private readonly DmaEngineOptions options;
    private readonly byte[] state;
    private readonly int chunkCount;
    private readonly ulong windowStart;
    private readonly ulong windowLength;
    private readonly ManualResetEventSlim dmaGate = new(false);
    private readonly Thread? worker;
    private readonly SavingSource savingSource;
    private DmaEngineRegisters registers;
    private bool dmaEnabled;
    private bool stopping;
    private Exception? workerError;

    // Progress of the current saving session.
    private readonly bool[] pendingInitial;
    private readonly bool[] dirty;
    private bool saving;
    private bool headerPending;
    private bool tailPending;
    private int pendingInitialCount;
    private int dirtyCount;
    private int initialCursor;
    private int dirtyCursor;

    /// <summary>Creates the device in RUNNING, its state at the power-on pattern of <see cref="DmaEngineOptions.Seed"/>.</summary>
    /// <param name="guestMemory">Where the engine's DMA writes go.</param>
    /// <param name="options">Configuration; defaults when null.</param>
    public DmaEngineDevice(IGuestMemoryAccess guestMemory, DmaEngineOptions? options = null)
        : base(FlagsOf(options ?? new DmaEngineOptions()), (options ?? new DmaEngineOptions()).Name)
    {
        ArgumentNullException.ThrowIfNull(guestMemory);
        this.options = options ?? new DmaEngineOptions();
        this.guestMemory = guestMemory;
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.StateSizeMiB, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(this.options.StateSizeMiB, 2047, nameof(options));
        int block = this.options.DmaBlockSize;
        if (block < 8 || block > 4096 || (block & (block - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"DMA block size {block} must be a power of two from 8 to 4096");
        }
        windowStart = this.options.DmaWindowStart;
        windowLength = this.options.DmaWindowLength != 0
            ? this.options.DmaWindowLength
            : guestMemory.Size > windowStart ? guestMemory.Size - windowStart : 0;
        if (windowStart % (ulong)block != 0 || windowLength < (ulong)block
            || windowStart + windowLength < windowStart || windowStart + windowLength > guestMemory.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(options),
                $"DMA window 0x{windowStart:X}+0x{windowLength:X} does not fit {guestMemory.Size} bytes of guest memory in {block}-byte blocks");
        }

        state = GC.AllocateUninitializedArray<byte>(this.options.StateSizeMiB * 1024 * 1024);
        chunkCount = state.Length / ChunkSize;
        pendingInitial = new bool[chunkCount];
        dirty = new bool[chunkCount];
        savingSource = new SavingSource(this);
        PowerOn();
        if (this.options.RunWorker)
        {
            worker = new Thread(RunWorker) { IsBackground = true, Name = $"{Name} DMA" };
            worker.Start();
        }
    }

    /// <summary>Size of the internal state in bytes.</summary>
    public long StateSize => state.Length;

    /// <summary>Whether the engine may initiate DMA now (RUNNING or PRE_COPY).</summary>
    public bool DmaEnabled
    {
        get
        {
            lock (data)
            {
                return dmaEnabled;
            }
        }
    }

    /// <summary>A snapshot of the register file.</summary>
    public DmaEngineRegisters Registers
    {
        get
        {
            lock (data)
            {
                return registers;
            }
        }
    }

    /// <summary>DMA operations performed since power-on (or since the loaded state's).</summary>
    public ulong OperationCount => Registers.OperationCount;

    /// <summary>Why the background worker stopped, if it failed.</summary>
    public Exception? WorkerError
    {
        get
        {
            lock (data)
            {
                return workerError;
            }
        }
    }

    /// <summary>
    /// <see cref="StateDigest"/> as it was right after the last RESUMING→STOP arc applied a
    /// migrated state (before any DMA could change it), or null if no state was ever loaded.
    /// </summary>
    public byte[]? LoadedStateDigest { get; private set; }

    /// <summary>SHA-256 of the internal state followed by the serialized registers.</summary>
    public byte[] StateDigest()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> serialized = stackalloc byte[DmaEngineRegisters.Size];
        lock (data)
        {
            hash.AppendData(state);
            registers.WriteTo(serialized);
        }
        hash.AppendData(serialized);
        return hash.GetHashAndReset();
    }

    /// <summary>
    /// Performs <paramref name="operations"/> DMA operations now, on the calling thread, if the device
    /// may initiate DMA; returns how many were performed (0 when it may not).
    /// </summary>
    public int PerformDma(int operations)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(operations);
        lock (data)
        {
            ObjectDisposedException.ThrowIf(stopping, this);
            if (!dmaEnabled)
            {
                return 0;
            }
            for (int i = 0; i < operations; i++)
            {
                DoOperation();
            }
            return operations;
        }
    }

    private ulong SavingPendingInitialBytes()
    {
        lock (data)
        {
            return PendingInitialBytes();
        }
    }

    private ulong SavingPendingDirtyBytes()
    {
        lock (data)
        {
            return (ulong)dirtyCount * ChunkRecordSize;
        }
    }

    private VfioSavingPiece ProduceSavingPiece(IBufferWriter<byte> output, bool stopCopy)
    {
        lock (data)
        {
            if (!saving)
            {
                return VfioSavingPiece.Nothing;
            }
            if (headerPending)
            {
                headerPending = false;
                DmaEngineStateFormat.WriteHeader(output, ChunkSize, state.Length);
                return VfioSavingPiece.Initial;
            }
            if (pendingInitialCount > 0)
            {
                int chunk = NextSet(pendingInitial, ref initialCursor);
                pendingInitial[chunk] = false;
                pendingInitialCount--;
                DmaEngineStateFormat.WriteChunk(output, chunk, state.AsSpan(chunk * ChunkSize, ChunkSize));
                return VfioSavingPiece.Initial;
            }
            if (dirtyCount > 0)
            {
                int chunk = NextSet(dirty, ref dirtyCursor);
                dirty[chunk] = false;
                dirtyCount--;
                DmaEngineStateFormat.WriteChunk(output, chunk, state.AsSpan(chunk * ChunkSize, ChunkSize));
                return VfioSavingPiece.Dirty;
            }
            if (stopCopy && tailPending)
            {
                tailPending = false;
                DmaEngineStateFormat.WriteRegisters(output, registers);
                DmaEngineStateFormat.WriteEnd(output);
                return VfioSavingPiece.Final;
            }
            return VfioSavingPiece.Nothing;
        }
    }

    /// <inheritdoc/>
    protected override ulong GetStopCopySize()
    {
        lock (data)
        {
            const ulong tail = DmaEngineStateFormat.RegistersRecordSize + DmaEngineStateFormat.EndRecordSize;
            if (!saving)
            {
                return DmaEngineStateFormat.HeaderRecordSize + (ulong)chunkCount * (ulong)ChunkRecordSize + tail;
            }
            return PendingInitialBytes() + (ulong)dirtyCount * (ulong)ChunkRecordSize + (tailPending ? tail : 0);
        }
    }

    /// <inheritdoc/>
    protected override void ResetDevice()
    {
        lock (data)
        {
            PowerOn();
        }
    }

    /// <inheritdoc/>
    protected override void OnError()
    {
        lock (data)
        {
            EnableDma(false);
            saving = false;
        }
    }

    /// <inheritdoc/>
    protected override void StopToRunning() => SetDma(true);

    /// <inheritdoc/>
    protected override void RunningToStop() => SetDma(false);

    /// <inheritdoc/>
    protected override void RunningToRunningP2P() => SetDma(false);

    /// <inheritdoc/>
    protected override void RunningP2PToRunning() => SetDma(true);

    /// <inheritdoc/>
    protected override void RunningP2PToStop() => SetDma(false);

    /// <inheritdoc/>
    protected override void StopToRunningP2P() => SetDma(false);

    /// <inheritdoc/>
    protected override IVfioSavingSource StopToStopCopy()
    {
        ThrowIfStopCopyFails();
        return StartSaving();
    }

    /// <inheritdoc/>
    protected override void StopCopyToStop() => EndSaving();

    /// <inheritdoc/>
    protected override void StopToResuming()
    {
    }

    /// <inheritdoc/>
    protected override void ResumingToStop(ReadOnlySpan<byte> data) => Load(data);

    /// <inheritdoc/>
    protected override IVfioSavingSource RunningToPreCopy() => StartSaving();

    /// <inheritdoc/>
    protected override void PreCopyToRunning() => EndSaving();

    /// <inheritdoc/>
    protected override void PreCopyToStopCopy()
    {
        ThrowIfStopCopyFails();
        SetDma(false);
    }

    /// <inheritdoc/>
    protected override void PreCopyToPreCopyP2P() => SetDma(false);

    /// <inheritdoc/>
    protected override void PreCopyP2PToPreCopy() => SetDma(true);

    /// <inheritdoc/>
    protected override void PreCopyP2PToRunningP2P() => EndSaving();

    /// <inheritdoc/>
    protected override void PreCopyP2PToStopCopy()
    {
        ThrowIfStopCopyFails();
        SetDma(false);
    }

    /// <inheritdoc/>
    protected override IVfioSavingSource RunningP2PToPreCopyP2P() => StartSaving();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        lock (data)
        {
            stopping = true;
            dmaEnabled = false;
            dmaGate.Set();
        }
        worker?.Join();
        dmaGate.Dispose();
    }

    private static VfioMigrationFlags FlagsOf(DmaEngineOptions options)
        => VfioMigrationFlags.StopCopy
           | (options.SupportsP2P ? VfioMigrationFlags.P2P : 0)
           | (options.SupportsPreCopy ? VfioMigrationFlags.PreCopy : 0);

    private static ulong Mix(ulong value)
    {
        value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9UL;
        value = (value ^ (value >> 27)) * 0x94D049BB133111EBUL;
        return value ^ (value >> 31);
    }

    private static ulong NextRandom(ref ulong generator)
    {
        generator += 0x9E3779B97F4A7C15UL;
        return Mix(generator);
    }

    private static int NextSet(bool[] bits, ref int cursor)
    {
        for (int n = 0; n < bits.Length; n++)
        {
            int i = (cursor + n) % bits.Length;
            if (bits[i])
            {
                cursor = (i + 1) % bits.Length;
                return i;
            }
        }
        throw new InvalidOperationException("No chunk is marked although the count says so");
    }

    private ulong PendingInitialBytes()
        => (headerPending ? (ulong)DmaEngineStateFormat.HeaderRecordSize : 0)
           + (ulong)pendingInitialCount * (ulong)ChunkRecordSize;

    private void PowerOn()
    {
        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(state.AsSpan());
        ulong seed = options.Seed * 0x100000001B3UL;
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = Mix(seed + (ulong)i);
        }
        registers = new DmaEngineRegisters(0, options.Seed, 0, 0);
        saving = false;
        EnableDma(true);
    }

    private void SetDma(bool enabled)
    {
        lock (data)
        {
            EnableDma(enabled);
        }
    }

    // Called with the data lock held. DMA operations run under the same lock, so once this
    // returns with false no operation is in progress and none will start.
    private void EnableDma(bool enabled)
    {
        dmaEnabled = enabled;
        if (stopping)
        {
            return;
        }
        if (enabled)
        {
            dmaGate.Set();
        }
        else
        {
            dmaGate.Reset();
        }
    }

    private IVfioSavingSource StartSaving()
    {
        lock (data)
        {
            saving = true;
            headerPending = true;
            tailPending = true;
            Array.Fill(pendingInitial, true);
            Array.Clear(dirty);
            pendingInitialCount = chunkCount;
            dirtyCount = 0;
            initialCursor = 0;
            dirtyCursor = 0;
            return savingSource;
        }
    }

    private void EndSaving()
    {
        lock (data)
        {
            saving = false;
        }
    }

    // One DMA operation; called with the data lock held and DMA enabled.
    private void DoOperation()
    {
        ulong generator = registers.GeneratorState;
        ulong where = NextRandom(ref generator);
        ulong value = NextRandom(ref generator);
        int block = options.DmaBlockSize;
        int chunk = (int)(where % (ulong)chunkCount);
        int offset = chunk * ChunkSize + (int)((where >> 32) % (ulong)(ChunkSize / block)) * block;
        ulong gpa = windowStart + value % (windowLength / (ulong)block) * (ulong)block;

        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(state.AsSpan(offset, block));
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = (words[i] ^ value) * 0x100000001B3UL + (ulong)i + registers.OperationCount;
        }
        guestMemory.Write(gpa, MemoryMarshal.AsBytes(words));
        RecordDmaWrite(gpa, (ulong)block);
        registers = new DmaEngineRegisters(registers.OperationCount + 1, generator, gpa, (ulong)chunk);

        if (saving && !pendingInitial[chunk] && !dirty[chunk])
        {
            dirty[chunk] = true;
            dirtyCount++;
        }
    }

    private void RunWorker()
    {
        try
        {
            while (true)
            {
                dmaGate.Wait();
                lock (data)
                {
                    if (stopping)
                    {
                        return;
                    }
                    for (int i = 0; i < options.WorkerBurst && dmaEnabled; i++)
                    {
                        DoOperation();
                    }
                }
                Thread.Sleep(options.WorkerPause);
            }
        }
        catch (Exception error)
        {
            lock (data)
            {
                workerError = error;
            }
        }
    }

    private void ThrowIfStopCopyFails()
    {
        if (options.FailStopCopy)
        {
            throw new VfioMigrationException(Errno.EIO, $"{options.Name}: injected failure entering STOP_COPY");
        }
    }

    private void Load(ReadOnlySpan<byte> input)
    {
        // First pass: validate everything, so a bad stream changes nothing.
        DmaEngineRegisters loaded = Parse(input, apply: false);
        lock (data)
        {
            Parse(input, apply: true);
            registers = loaded;
        }

        // Taken before the arc completes, so before the device can run DMA again.
        LoadedStateDigest = StateDigest();
    }

    private DmaEngineRegisters Parse(ReadOnlySpan<byte> input, bool apply)
    {
        bool header = false;
        bool haveRegisters = false;
        bool end = false;
        var seen = new bool[chunkCount];
        int seenCount = 0;
        DmaEngineRegisters loaded = default;
        int position = 0;
        while (position < input.Length)
        {
            if (end)
            {
                throw Invalid($"data after the end marker at offset {position}");
            }
            if (!DmaEngineStateFormat.TryReadRecord(input[position..], out var type, out uint index, out var payload))
            {
                throw Invalid($"truncated record at offset {position} of {input.Length}");
            }
            switch (type)
            {
                case DmaEngineStateFormat.RecordType.Header:
                    if (header || payload.Length != DmaEngineStateFormat.HeaderPayloadSize)
                    {
                        throw Invalid($"bad header record at offset {position}");
                    }
                    ulong magic = BitConverter.ToUInt64(payload);
                    uint version = BitConverter.ToUInt32(payload[8..]);
                    uint chunkSize = BitConverter.ToUInt32(payload[12..]);
                    ulong stateSize = BitConverter.ToUInt64(payload[16..]);
                    if (magic != DmaEngineStateFormat.Magic || version != DmaEngineStateFormat.Version
                        || chunkSize != ChunkSize || stateSize != (ulong)state.Length)
                    {
                        throw Invalid($"header for version {version}, {chunkSize}-byte chunks, {stateSize}-byte state; this device has {state.Length}");
                    }
                    header = true;
                    break;
                case DmaEngineStateFormat.RecordType.Chunk:
                    if (!header || haveRegisters || index >= (uint)chunkCount || payload.Length != ChunkSize)
                    {
                        throw Invalid($"bad chunk record {index} at offset {position}");
                    }
                    if (!seen[index])
                    {
                        seen[index] = true;
                        seenCount++;
                    }
                    if (apply)
                    {
                        payload.CopyTo(state.AsSpan((int)index * ChunkSize, ChunkSize));
                    }
                    break;
                case DmaEngineStateFormat.RecordType.Registers:
                    if (!header || haveRegisters || payload.Length != DmaEngineRegisters.Size)
                    {
                        throw Invalid($"bad registers record at offset {position}");
                    }
                    loaded = DmaEngineRegisters.ReadFrom(payload);
                    haveRegisters = true;
                    break;
                case DmaEngineStateFormat.RecordType.End:
                    if (!haveRegisters || payload.Length != 0)
                    {
                        throw Invalid($"end marker before the registers at offset {position}");
                    }
                    end = true;
                    break;
                default:
                    throw Invalid($"unknown record type {(uint)type} at offset {position}");
            }
            position += DmaEngineStateFormat.RecordHeaderSize + payload.Length;
        }
        if (!end || seenCount != chunkCount)
        {
            throw Invalid($"incomplete state: {seenCount} of {chunkCount} chunks, {(end ? "with" : "without")} end marker");
        }
        return loaded;
    }

    // The device's saving data, kept off the device's public surface.
    private sealed class SavingSource(DmaEngineDevice device) : IVfioSavingSource
    {
        public ulong PendingInitialBytes => device.SavingPendingInitialBytes();

        public ulong PendingDirtyBytes => device.SavingPendingDirtyBytes();

        public VfioSavingPiece ProduceNext(IBufferWriter<byte> output, bool stopCopy) => device.ProduceSavingPiece(output, stopCopy);
    }

    private VfioMigrationException Invalid(string what) => new(Errno.EINVAL, $"{Name}: invalid resuming data: {what}");
}
