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

    private readonly object _data = new();
    private readonly IGuestMemoryAccess _guestMemory;
    private readonly DmaEngineOptions _options;
    private readonly byte[] _state;
    private readonly int _chunkCount;
    private readonly ulong _windowStart;
    private readonly ulong _windowLength;
    private readonly ManualResetEventSlim _dmaGate = new(false);
    private readonly Thread? _worker;
    private readonly SavingSource _savingSource;
    private DmaEngineRegisters _registers;
    private bool _dmaEnabled;
    private bool _stopping;
    private Exception? _workerError;

    // Progress of the current saving session.
    private readonly bool[] _pendingInitial;
    private readonly bool[] _dirty;
    private bool _saving;
    private bool _headerPending;
    private bool _tailPending;
    private int _pendingInitialCount;
    private int _dirtyCount;
    private int _initialCursor;
    private int _dirtyCursor;

    /// <summary>Creates the device in RUNNING, its state at the power-on pattern of <see cref="DmaEngineOptions.Seed"/>.</summary>
    /// <param name="guestMemory">Where the engine's DMA writes go.</param>
    /// <param name="options">Configuration; defaults when null.</param>
    public DmaEngineDevice(IGuestMemoryAccess guestMemory, DmaEngineOptions? options = null)
        : base(FlagsOf(options ?? new DmaEngineOptions()), (options ?? new DmaEngineOptions()).Name)
    {
        ArgumentNullException.ThrowIfNull(guestMemory);
        _options = options ?? new DmaEngineOptions();
        _guestMemory = guestMemory;
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.StateSizeMiB, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(_options.StateSizeMiB, 2047, nameof(options));
        int block = _options.DmaBlockSize;
        if (block < 8 || block > 4096 || (block & (block - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"DMA block size {block} must be a power of two from 8 to 4096");
        }
        _windowStart = _options.DmaWindowStart;
        _windowLength = _options.DmaWindowLength != 0
            ? _options.DmaWindowLength
            : guestMemory.Size > _windowStart ? guestMemory.Size - _windowStart : 0;
        if (_windowStart % (ulong)block != 0 || _windowLength < (ulong)block
            || _windowStart + _windowLength < _windowStart || _windowStart + _windowLength > guestMemory.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(options),
                $"DMA window 0x{_windowStart:X}+0x{_windowLength:X} does not fit {guestMemory.Size} bytes of guest memory in {block}-byte blocks");
        }

        _state = GC.AllocateUninitializedArray<byte>(_options.StateSizeMiB * 1024 * 1024);
        _chunkCount = _state.Length / ChunkSize;
        _pendingInitial = new bool[_chunkCount];
        _dirty = new bool[_chunkCount];
        _savingSource = new SavingSource(this);
        PowerOn();
        if (_options.RunWorker)
        {
            _worker = new Thread(RunWorker) { IsBackground = true, Name = $"{Name} DMA" };
            _worker.Start();
        }
    }

    /// <summary>Size of the internal state in bytes.</summary>
    public long StateSize => _state.Length;

    /// <summary>Whether the engine may initiate DMA now (RUNNING or PRE_COPY).</summary>
    public bool DmaEnabled
    {
        get
        {
            lock (_data)
            {
                return _dmaEnabled;
            }
        }
    }

    /// <summary>A snapshot of the register file.</summary>
    public DmaEngineRegisters Registers
    {
        get
        {
            lock (_data)
            {
                return _registers;
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
            lock (_data)
            {
                return _workerError;
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
        lock (_data)
        {
            hash.AppendData(_state);
            _registers.WriteTo(serialized);
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
        lock (_data)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (!_dmaEnabled)
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
        lock (_data)
        {
            return PendingInitialBytes();
        }
    }

    private ulong SavingPendingDirtyBytes()
    {
        lock (_data)
        {
            return (ulong)_dirtyCount * ChunkRecordSize;
        }
    }

    private VfioSavingPiece ProduceSavingPiece(IBufferWriter<byte> output, bool stopCopy)
    {
        lock (_data)
        {
            if (!_saving)
            {
                return VfioSavingPiece.Nothing;
            }
            if (_headerPending)
            {
                _headerPending = false;
                DmaEngineStateFormat.WriteHeader(output, ChunkSize, _state.Length);
                return VfioSavingPiece.Initial;
            }
            if (_pendingInitialCount > 0)
            {
                int chunk = NextSet(_pendingInitial, ref _initialCursor);
                _pendingInitial[chunk] = false;
                _pendingInitialCount--;
                DmaEngineStateFormat.WriteChunk(output, chunk, _state.AsSpan(chunk * ChunkSize, ChunkSize));
                return VfioSavingPiece.Initial;
            }
            if (_dirtyCount > 0)
            {
                int chunk = NextSet(_dirty, ref _dirtyCursor);
                _dirty[chunk] = false;
                _dirtyCount--;
                DmaEngineStateFormat.WriteChunk(output, chunk, _state.AsSpan(chunk * ChunkSize, ChunkSize));
                return VfioSavingPiece.Dirty;
            }
            if (stopCopy && _tailPending)
            {
                _tailPending = false;
                DmaEngineStateFormat.WriteRegisters(output, _registers);
                DmaEngineStateFormat.WriteEnd(output);
                return VfioSavingPiece.Final;
            }
            return VfioSavingPiece.Nothing;
        }
    }

    /// <inheritdoc/>
    protected override ulong GetStopCopySize()
    {
        lock (_data)
        {
            const ulong tail = DmaEngineStateFormat.RegistersRecordSize + DmaEngineStateFormat.EndRecordSize;
            if (!_saving)
            {
                return DmaEngineStateFormat.HeaderRecordSize + (ulong)_chunkCount * (ulong)ChunkRecordSize + tail;
            }
            return PendingInitialBytes() + (ulong)_dirtyCount * (ulong)ChunkRecordSize + (_tailPending ? tail : 0);
        }
    }

    /// <inheritdoc/>
    protected override void ResetDevice()
    {
        lock (_data)
        {
            PowerOn();
        }
    }

    /// <inheritdoc/>
    protected override void OnError()
    {
        lock (_data)
        {
            EnableDma(false);
            _saving = false;
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
        lock (_data)
        {
            _stopping = true;
            _dmaEnabled = false;
            _dmaGate.Set();
        }
        _worker?.Join();
        _dmaGate.Dispose();
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
        => (_headerPending ? (ulong)DmaEngineStateFormat.HeaderRecordSize : 0)
           + (ulong)_pendingInitialCount * (ulong)ChunkRecordSize;

    private void PowerOn()
    {
        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(_state.AsSpan());
        ulong seed = _options.Seed * 0x100000001B3UL;
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = Mix(seed + (ulong)i);
        }
        _registers = new DmaEngineRegisters(0, _options.Seed, 0, 0);
        _saving = false;
        EnableDma(true);
    }

    private void SetDma(bool enabled)
    {
        lock (_data)
        {
            EnableDma(enabled);
        }
    }

    // Called with the data lock held. DMA operations run under the same lock, so once this
    // returns with false no operation is in progress and none will start.
    private void EnableDma(bool enabled)
    {
        _dmaEnabled = enabled;
        if (_stopping)
        {
            return;
        }
        if (enabled)
        {
            _dmaGate.Set();
        }
        else
        {
            _dmaGate.Reset();
        }
    }

    private IVfioSavingSource StartSaving()
    {
        lock (_data)
        {
            _saving = true;
            _headerPending = true;
            _tailPending = true;
            Array.Fill(_pendingInitial, true);
            Array.Clear(_dirty);
            _pendingInitialCount = _chunkCount;
            _dirtyCount = 0;
            _initialCursor = 0;
            _dirtyCursor = 0;
            return _savingSource;
        }
    }

    private void EndSaving()
    {
        lock (_data)
        {
            _saving = false;
        }
    }

    // One DMA operation; called with the data lock held and DMA enabled.
    private void DoOperation()
    {
        ulong generator = _registers.GeneratorState;
        ulong where = NextRandom(ref generator);
        ulong value = NextRandom(ref generator);
        int block = _options.DmaBlockSize;
        int chunk = (int)(where % (ulong)_chunkCount);
        int offset = chunk * ChunkSize + (int)((where >> 32) % (ulong)(ChunkSize / block)) * block;
        ulong gpa = _windowStart + value % (_windowLength / (ulong)block) * (ulong)block;

        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(_state.AsSpan(offset, block));
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = (words[i] ^ value) * 0x100000001B3UL + (ulong)i + _registers.OperationCount;
        }
        _guestMemory.Write(gpa, MemoryMarshal.AsBytes(words));
        RecordDmaWrite(gpa, (ulong)block);
        _registers = new DmaEngineRegisters(_registers.OperationCount + 1, generator, gpa, (ulong)chunk);

        if (_saving && !_pendingInitial[chunk] && !_dirty[chunk])
        {
            _dirty[chunk] = true;
            _dirtyCount++;
        }
    }

    private void RunWorker()
    {
        try
        {
            while (true)
            {
                _dmaGate.Wait();
                lock (_data)
                {
                    if (_stopping)
                    {
                        return;
                    }
                    for (int i = 0; i < _options.WorkerBurst && _dmaEnabled; i++)
                    {
                        DoOperation();
                    }
                }
                Thread.Sleep(_options.WorkerPause);
            }
        }
        catch (Exception error)
        {
            lock (_data)
            {
                _workerError = error;
            }
        }
    }

    private void ThrowIfStopCopyFails()
    {
        if (_options.FailStopCopy)
        {
            throw new VfioMigrationException(Errno.EIO, $"{_options.Name}: injected failure entering STOP_COPY");
        }
    }

    private void Load(ReadOnlySpan<byte> input)
    {
        // First pass: validate everything, so a bad stream changes nothing.
        DmaEngineRegisters loaded = Parse(input, apply: false);
        lock (_data)
        {
            Parse(input, apply: true);
            _registers = loaded;
        }

        // Taken before the arc completes, so before the device can run DMA again.
        LoadedStateDigest = StateDigest();
    }

    private DmaEngineRegisters Parse(ReadOnlySpan<byte> input, bool apply)
    {
        bool header = false;
        bool haveRegisters = false;
        bool end = false;
        var seen = new bool[_chunkCount];
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
                        || chunkSize != ChunkSize || stateSize != (ulong)_state.Length)
                    {
                        throw Invalid($"header for version {version}, {chunkSize}-byte chunks, {stateSize}-byte state; this device has {_state.Length}");
                    }
                    header = true;
                    break;
                case DmaEngineStateFormat.RecordType.Chunk:
                    if (!header || haveRegisters || index >= (uint)_chunkCount || payload.Length != ChunkSize)
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
                        payload.CopyTo(_state.AsSpan((int)index * ChunkSize, ChunkSize));
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
        if (!end || seenCount != _chunkCount)
        {
            throw Invalid($"incomplete state: {seenCount} of {_chunkCount} chunks, {(end ? "with" : "without")} end marker");
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
