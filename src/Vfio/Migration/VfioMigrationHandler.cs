using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.Control;
using MiniVmm.Migration.Ram;
using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Native;
using MiniVmm.Runstate;

namespace MiniVmm.Vfio.Migration;

/// <summary>
/// QEMU's VFIO migration handler set for one device (hw/vfio/migration.c; <c>docs/vfio.md</c>),
/// registered as <c>&lt;id&gt;/vfio</c>, instance ANY, version 1. It drives the device through
/// the uAPI v2 state machine with QEMU's recovery rules (<c>vfio_migration_set_state</c>), moves
/// the device's data in START/PART/END sections and its config in a FULL section
/// (<c>vfio_save_setup</c>, <c>vfio_save_iterate</c>, <c>vfio_save_complete_precopy</c>,
/// <c>vfio_save_state</c>), follows the VM's run state with a change-state handler and, for P2P
/// devices, a prepare handler so that every device is quiesced before any device stops or starts
/// (<c>vfio_vmstate_change_prepare</c>, <c>vfio_vmstate_change</c>), and folds the device's DMA
/// dirty log into RAM's at every sync. Every change of the cached device state emits
/// <c>VFIO_MIGRATION</c> as QEMU ≥ 9.1 does.
/// </summary>
public sealed partial class VfioMigrationHandler : ISaveVmHandlers, ISaveStateDevice, IDirtyLogSource, IDisposable
{
    /// <summary>QEMU's data buffer size: one read of the data fd moves at most this much.</summary>
    public const int DataBufferSize = 1 << 20;

    /// <summary>What pending-exact reports when the device cannot say its stop-copy size (QEMU: 100 GiB).</summary>
    public const ulong UnknownStopCopySize = 100UL << 30;

    private readonly VfioDevice _device;
    private readonly VirtualMachine _vm;
    private readonly VfioDeviceConfig _config;
    private readonly GuestMemory? _memory;
    private readonly ISwitchoverAck _switchoverAck;
    private readonly ILogger _logger;
    private readonly IDisposable _stateHandler;
    private readonly object _gate = new();
    // Written under _gate; read without it, so that a query never waits for a migration thread
    // blocked on the transport while it holds _gate.
    private volatile VfioDeviceState _state = VfioDeviceState.Running;
    private FileDescriptorHandle? _dataFd;
    private byte[]? _buffer;
    private ulong _initialBytes;
    private ulong _dirtyBytes;
    private bool _initialDataSent;
    private long _bytesTransferred;
    private IDisposable? _dirtyLogSource;
    private bool _dmaLogging;
    private ulong _dmaPageSize;
    private int _disposed;

    /// <summary>Creates the handler for <paramref name="device"/> and registers its run-state handlers.</summary>
    /// <param name="device">The device.</param>
    /// <param name="id">The device id (<c>-device ...,id=</c>).</param>
    /// <param name="vm">The VM whose run state the device follows.</param>
    /// <param name="config">The device config sent in the FULL section.</param>
    /// <param name="memory">Guest RAM, for DMA dirty logging; null for a device that does no DMA.</param>
    /// <param name="switchoverAck">The switchover-ack protocol (the capability, read per migration, and the destination's approval); null for off.</param>
    /// <param name="logger">Where failures are logged.</param>
    public VfioMigrationHandler(
        VfioDevice device, string id, VirtualMachine vm, VfioDeviceConfig config, GuestMemory? memory = null,
        ISwitchoverAck? switchoverAck = null, ILogger? logger = null)
    {
        _device = device;
        Id = id;
        _vm = vm;
        _config = config;
        _memory = memory;
        _switchoverAck = switchoverAck ?? SwitchoverAckOff.Instance;
        _logger = logger ?? NullLogger.Instance;
        Flags = device.QueryFlags();
        SupportsDirtyTracking = ProbeDmaLogging(device);
        _stateHandler = vm.StateChangeHandlers.Register(
            OnRunStateChange, priority: 1, prepare: Flags.HasFlag(VfioMigrationFlags.P2P) ? OnRunStatePrepare : null,
            name: $"vfio {id}");
    }

    /// <summary>The device id.</summary>
    public string Id { get; }

    /// <summary>The section name: <c>&lt;id&gt;/vfio</c>.</summary>
    public string IdStr => $"{Id}/vfio";

    /// <summary>The device's migration flags.</summary>
    public VfioMigrationFlags Flags { get; }

    /// <summary>Whether the device can report its DMA writes (without it, QEMU blocks migration).</summary>
    public bool SupportsDirtyTracking { get; }

    /// <summary>The state QEMU believes the device is in (it never asks the device).</summary>
    public VfioDeviceState CachedState => _state;

    /// <summary>
    /// Device data bytes put in the stream by this handler in the current migration: the DATA
    /// payloads read from the device, reset at setup (<c>query-migrate</c>'s vfio transferred).
    /// </summary>
    public long BytesTransferred => Interlocked.Read(ref _bytesTransferred);

    /// <inheritdoc />
    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState;

    /// <inheritdoc />
    public SectionKind Kind => SectionKind.Vfio;

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry) =>
        registry.RegisterLive(IdStr, SaveStateRegistry.InstanceIdAny, 1, this);

    /// <summary>
    /// <c>save_prepare</c>: starts DMA dirty logging over guest RAM before RAM's setup marks its
    /// first pass, so no DMA write can fall between the two. QMP thread, big lock held.
    /// </summary>
    public void SavePrepare()
    {
        lock (_gate)
        {
            Interlocked.Exchange(ref _bytesTransferred, 0);
            StartDmaLogging();
        }
    }

    /// <summary>
    /// <c>save_setup</c>: <c>[SETUP][END_OF_STATE]</c>; a PRE_COPY device in RUNNING enters
    /// PRE_COPY (the kernel hands over the data fd) and its precopy sizes are read. Migration
    /// thread, big lock not held.
    /// </summary>
    public void SaveSetup(MigrationStreamWriter stream)
    {
        lock (_gate)
        {
            stream.PutBe64((ulong)VfioStreamTag.SetupState);
            ulong stopCopy = TryStopCopySize() ?? DataBufferSize;
            int size = (int)Math.Min(DataBufferSize, Math.Max(1UL, stopCopy));
            _buffer = new byte[size];
            _initialDataSent = false;
            if (Flags.HasFlag(VfioMigrationFlags.PreCopy))
            {
                switch (_state)
                {
                    case VfioDeviceState.Running:
                        SetState(VfioDeviceState.PreCopy, VfioDeviceState.Running);
                        RefreshPrecopyInfo();
                        break;
                    case VfioDeviceState.Stop:
                        break;
                    default:
                        throw new VfioMigrationException(Errno.EINVAL, $"{IdStr}: Invalid device state {_state} for save_setup");
                }
            }

            stream.PutBe64((ulong)VfioStreamTag.EndOfState);
        }
    }

    /// <summary><c>state_pending_estimate</c>: the cached initial + dirty precopy bytes, no ioctl. Migration thread.</summary>
    public PendingSize StatePendingEstimate()
    {
        lock (_gate)
        {
            return IsPrecopy(_state) ? new PendingSize(_initialBytes + _dirtyBytes, 0) : PendingSize.None;
        }
    }

    /// <summary>
    /// <c>state_pending_exact</c>: the stop-copy size (100 GiB when unknown, so the size never
    /// allows a switchover), refreshing the cached precopy sizes. Migration thread.
    /// </summary>
    public PendingSize StatePendingExact()
    {
        lock (_gate)
        {
            ulong stopCopy = TryStopCopySize() ?? UnknownStopCopySize;
            if (IsPrecopy(_state))
            {
                RefreshPrecopyInfo();
            }

            return new PendingSize(stopCopy, 0);
        }
    }

    /// <summary><c>is_active_iterate</c>: only while the device is in PRE_COPY or PRE_COPY_P2P.</summary>
    public bool IsActiveIterate()
    {
        lock (_gate)
        {
            return IsPrecopy(_state);
        }
    }

    /// <summary>
    /// <c>save_live_iterate</c>: up to a buffer of the data fd as a DATA record — with
    /// switchover-ack, up to <see cref="InitialDataPerRound"/> in buffer-sized records while
    /// initial data remains — then END_OF_STATE, or, once with switchover-ack, INIT_DATA_SENT when
    /// the initial data is all out. Migration thread, big lock not held.
    /// </summary>
    /// <remarks>
    /// The device is read under the handler's lock; the stream is written after it is released,
    /// so a run-state change (big lock held) never waits behind a write to a slow destination.
    /// The switchover waits for the destination's ack of the initial data while RAM takes its
    /// time budget every round, so one buffer per round made a 16 MiB device hold a busy guest's
    /// switchover back by 16 rounds.
    /// </remarks>
    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        long sentThisRound = 0;
        while (true)
        {
            (int read, VfioStreamTag trailer, IterationOutcome outcome, bool more) = ReadPrecopyBlock(sentThisRound);
            WriteBlock(stream, read);
            sentThisRound += read;
            if (!more)
            {
                stream.PutBe64((ulong)trailer);
                return outcome;
            }
        }
    }

    /// <summary>With switchover-ack, how much initial data one iterate call may send (in buffer-sized records).</summary>
    public const long InitialDataPerRound = 8L * DataBufferSize;

    /// <summary>
    /// One DATA record's worth under the lock: a device whose fd hands out less per read (a pipe
    /// gives 64 KiB) is read again while it still reports precopy data. <c>more</c> says whether
    /// the caller should read another record this round (initial data left under switchover-ack,
    /// within <see cref="InitialDataPerRound"/>).
    /// </summary>
    private (int Read, VfioStreamTag Trailer, IterationOutcome Outcome, bool More) ReadPrecopyBlock(long sentThisRound)
    {
        lock (_gate)
        {
            int read = 0;
            do
            {
                int got = ReadBlock(read);
                if (got == 0)
                {
                    _initialBytes = 0;
                    _dirtyBytes = 0;
                    break;
                }

                read += got;
                ulong left = (ulong)got;
                ulong fromInitial = Math.Min(left, _initialBytes);
                _initialBytes -= fromInitial;
                _dirtyBytes -= Math.Min(left - fromInitial, _dirtyBytes);
            }
            while (read < DataBufferSize && _initialBytes + _dirtyBytes > 0);

            bool more = read == DataBufferSize && _switchoverAck.IsEnabled && _initialBytes > 0
                && sentThisRound + read < InitialDataPerRound;
            VfioStreamTag trailer = VfioStreamTag.EndOfState;
            if (!more && _switchoverAck.IsEnabled && _initialBytes == 0 && !_initialDataSent)
            {
                trailer = VfioStreamTag.InitDataSent;
                _initialDataSent = true;
            }

            IterationOutcome outcome = _initialBytes == 0 && _dirtyBytes == 0 ? IterationOutcome.Finished : IterationOutcome.MoreData;
            return (read, trailer, outcome, more);
        }
    }

    /// <summary>
    /// <c>save_complete</c>: STOP_COPY (recovering to STOP), then the whole stop-copy data as
    /// DATA records until the fd ends, then END_OF_STATE. Big lock held, VM stopped.
    /// </summary>
    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream)
    {
        lock (_gate)
        {
            SetState(VfioDeviceState.StopCopy, VfioDeviceState.Stop);
        }

        while (true)
        {
            int read;
            lock (_gate)
            {
                read = ReadBlock();
            }

            if (read == 0)
            {
                break;
            }

            WriteBlock(stream, read);
        }

        stream.PutBe64((ulong)VfioStreamTag.EndOfState);
    }

    /// <summary><c>save_state</c>: <c>[CONFIG_STATE][config][END_OF_STATE]</c> in the FULL section. Big lock held, VM stopped.</summary>
    public void SaveState(MigrationStreamWriter stream)
    {
        stream.PutBe64((ulong)VfioStreamTag.ConfigState);
        VfioDeviceConfig.Vmsd.Save(stream, _config, null);
        stream.PutBe64((ulong)VfioStreamTag.EndOfState);
    }

    /// <summary>
    /// <c>save_cleanup</c>: STOP_COPY back to STOP (kept out of the downtime); a device left in
    /// precopy by a failed or cancelled migration of a live VM goes back to RUNNING (QEMU's
    /// PRECOPY_FAILED notifier); the data fd closes; DMA logging stops. Big lock held; may run
    /// without setup.
    /// </summary>
    public void SaveCleanup()
    {
        lock (_gate)
        {
            try
            {
                if (_state == VfioDeviceState.StopCopy)
                {
                    SetStateOrReset(VfioDeviceState.Stop);
                }
                else if (IsPrecopy(_state) && _vm.IsLive)
                {
                    SetStateOrReset(VfioDeviceState.Running);
                }
            }
            finally
            {
                _buffer = null;
                _initialBytes = 0;
                _dirtyBytes = 0;
                _initialDataSent = false;
                CloseDataFd();
                StopDmaLogging();
            }
        }
    }

    /// <summary>
    /// <c>load_setup</c>: RESUMING (recovering to the cached state); the kernel hands over the
    /// fd the state is written to. Destination, big lock held.
    /// </summary>
    public void LoadSetup()
    {
        lock (_gate)
        {
            SetState(VfioDeviceState.Resuming, _state);
        }
    }

    /// <summary>
    /// <c>load_state</c>: reads tags until END_OF_STATE; DATA records go to the data fd, CONFIG
    /// loads the config. Destination, big lock held (released while waiting for bytes).
    /// </summary>
    public void LoadState(MigrationStreamReader stream, int versionId)
    {
        lock (_gate)
        {
            ulong tag = stream.GetBe64();
            while (tag != (ulong)VfioStreamTag.EndOfState)
            {
                switch ((VfioStreamTag)tag)
                {
                    case VfioStreamTag.ConfigState:
                        VfioDeviceConfig.Vmsd.Load(stream, _config, 1);
                        long at = stream.Offset;
                        if (stream.GetBe64() != (ulong)VfioStreamTag.EndOfState)
                        {
                            throw new MigrationStreamException($"{IdStr}: end flag incorrect after the device config", at);
                        }

                        return;
                    case VfioStreamTag.SetupState:
                        long setupEnd = stream.Offset;
                        if (stream.GetBe64() != (ulong)VfioStreamTag.EndOfState)
                        {
                            throw new MigrationStreamException($"{IdStr}: EOS not found after SETUP_STATE", setupEnd);
                        }

                        return;
                    case VfioStreamTag.DataState:
                        CopyData(stream, stream.GetBe64());
                        break;
                    case VfioStreamTag.InitDataSent:
                        long initAt = stream.Offset - 8;
                        if (!Flags.HasFlag(VfioMigrationFlags.PreCopy) || !_switchoverAck.IsEnabled)
                        {
                            throw new MigrationStreamException(
                                $"{IdStr}: Received INIT_DATA_SENT but switchover ack is not used", initAt);
                        }

                        try
                        {
                            _switchoverAck.ApproveSwitchover();
                        }
                        catch (Exception error) when (error is InvalidOperationException or ReturnPathException)
                        {
                            throw new MigrationStreamException($"{IdStr}: INIT_DATA_SENT: {error.Message}", initAt, error);
                        }

                        return;
                    default:
                        throw new MigrationStreamException($"{IdStr}: Unknown tag 0x{tag:x16}", stream.Offset - 8);
                }

                tag = stream.GetBe64();
            }
        }
    }

    /// <summary>
    /// <c>load_cleanup</c>: closes the data fd. The device stays in RESUMING until the VM
    /// starts, when the RESUMING→STOP arc applies the state. Big lock held.
    /// </summary>
    public void LoadCleanup()
    {
        lock (_gate)
        {
            CloseDataFd();
        }
    }

    /// <summary><c>switchover_ack_needed</c>: a PRE_COPY device must ack before the source switches over.</summary>
    public bool SwitchoverAckNeeded() => Flags.HasFlag(VfioMigrationFlags.PreCopy);

    /// <summary>
    /// The DMA dirty log's pages since the last sync, marked in RAM's dirty bitmaps (QEMU's
    /// log_sync). Big lock held.
    /// </summary>
    public void SyncDirtyLog(GuestMemory memory)
    {
        lock (_gate)
        {
            if (!_dmaLogging)
            {
                return;
            }

            foreach (RamBlock block in memory.Blocks)
            {
                ulong[] bitmap = _device.DmaLoggingReport((ulong)block.GuestAddress, (ulong)block.UsedLength, _dmaPageSize);
                long pagesPerBit = (long)(_dmaPageSize / RamBlock.PageSize);
                for (int word = 0; word < bitmap.Length; word++)
                {
                    ulong bits = bitmap[word];
                    while (bits != 0)
                    {
                        int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
                        bits &= bits - 1;
                        long first = ((long)word * 64 + bit) * pagesPerBit;
                        block.DirtyBitmap.MarkRange(first, Math.Min(pagesPerBit, block.PageCount - first));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The prepare handler (P2P devices only): every device goes to a P2P state before any
    /// device's main handler runs. Thread that starts or stops the VM, big lock held.
    /// </summary>
    private void OnRunStatePrepare(bool running, RunState state)
    {
        lock (_gate)
        {
            SetStateOrReset(_state == VfioDeviceState.PreCopy ? VfioDeviceState.PreCopyP2P : VfioDeviceState.RunningP2P);
        }
    }

    /// <summary>
    /// The main change-state handler: RUNNING on start; on stop STOP_COPY if in precopy and the
    /// VM stops for the switchover or a pause, else STOP. Big lock held.
    /// </summary>
    private void OnRunStateChange(bool running, RunState state)
    {
        lock (_gate)
        {
            VfioDeviceState next = running
                ? VfioDeviceState.Running
                : IsPrecopy(_state) && state is RunState.FinishMigrate or RunState.Paused
                    ? VfioDeviceState.StopCopy
                    : VfioDeviceState.Stop;
            SetStateOrReset(next);
        }
    }

    /// <summary>
    /// QEMU's <c>vfio_migration_set_state</c>: on failure, the recover state, else a device reset.
    /// </summary>
    private void SetState(VfioDeviceState next, VfioDeviceState recover)
    {
        if (next == _state)
        {
            return;
        }

        FileDescriptorHandle? fd;
        try
        {
            fd = _device.SetState(next);
        }
        catch (VfioMigrationException error)
        {
            LogSetStateFailed(error, IdStr, _state.ToQapiName(), next.ToQapiName());
            if (recover == VfioDeviceState.Error)
            {
                ResetDevice();
                throw;
            }

            try
            {
                _device.SetState(recover)?.Dispose();
                Cache(recover);
            }
            catch (VfioMigrationException)
            {
                ResetDevice();
            }

            throw;
        }

        Cache(next);
        if (fd is not null)
        {
            if (_dataFd is not null)
            {
                fd.Dispose();
                throw new VfioMigrationException(Errno.EBADF, $"{IdStr}: data_fd out of sync");
            }

            _dataFd = fd;
        }
    }

    private void SetStateOrReset(VfioDeviceState next) => SetState(next, VfioDeviceState.Error);

    /// <summary>VFIO_DEVICE_RESET: the device is RUNNING again and every data session is gone.</summary>
    private void ResetDevice()
    {
        LogResetting(IdStr);
        _device.Reset();
        CloseDataFd();
        Cache(VfioDeviceState.Running);
    }

    private void Cache(VfioDeviceState state)
    {
        if (_state == state)
        {
            return;
        }

        _state = state;
        _vm.Events.Emit("VFIO_MIGRATION", new JsonObject
        {
            ["device-id"] = Id,
            ["qom-path"] = $"/machine/peripheral/{Id}",
            ["device-state"] = state.ToQapiName(),
        });
    }

    /// <summary>
    /// The read half of QEMU's <c>vfio_save_block</c>: one read of the data fd into the buffer;
    /// ENOMSG and EOF count as 0. Handler lock held.
    /// </summary>
    private int ReadBlock(int offset = 0)
    {
        if (_dataFd is null || _buffer is null)
        {
            return 0;
        }

        try
        {
            return _device.ReadData(_dataFd, _buffer.AsSpan(offset));
        }
        catch (NativeCallException error) when (error.Errno == Errno.ENOMSG)
        {
            return 0;
        }
    }

    /// <summary>
    /// The write half of <c>vfio_save_block</c>: what <see cref="ReadBlock"/> read goes out as a
    /// DATA record. Migration thread, handler lock not held (only that thread uses the buffer
    /// while a save runs).
    /// </summary>
    private void WriteBlock(MigrationStreamWriter stream, int read)
    {
        if (read <= 0)
        {
            return;
        }

        stream.PutBe64((ulong)VfioStreamTag.DataState);
        stream.PutBe64((ulong)read);
        stream.PutBuffer(_buffer.AsSpan(0, read));
        Interlocked.Add(ref _bytesTransferred, read);
    }

    /// <summary>Copies a DATA record's bytes from the stream to the resuming fd, in buffer-sized pieces (no allocation from the size).</summary>
    private void CopyData(MigrationStreamReader stream, ulong size)
    {
        FileDescriptorHandle fd = _dataFd
            ?? throw new MigrationStreamException($"{IdStr}: DATA_STATE while the device is not resuming ({_state.ToQapiName()})", stream.Offset);
        byte[] buffer = _buffer ??= new byte[DataBufferSize];
        while (size > 0)
        {
            int chunk = (int)Math.Min(size, (ulong)buffer.Length);
            stream.ReadExactly(buffer.AsSpan(0, chunk), "VFIO device data");
            fd.WriteAll(buffer.AsSpan(0, chunk));
            size -= (ulong)chunk;
        }
    }

    private void RefreshPrecopyInfo()
    {
        try
        {
            (_initialBytes, _dirtyBytes) = _device.PrecopyInfo();
        }
        catch (VfioMigrationException)
        {
            (_initialBytes, _dirtyBytes) = (0, 0);
        }
    }

    private ulong? TryStopCopySize()
    {
        try
        {
            return _device.StopCopySize();
        }
        catch (VfioMigrationException)
        {
            return null;
        }
    }

    private void StartDmaLogging()
    {
        if (_memory is null || _dmaLogging || !SupportsDirtyTracking)
        {
            return;
        }

        VfioDmaRange[] ranges = [.. _memory.Blocks.Select(b => new VfioDmaRange((ulong)b.GuestAddress, (ulong)b.UsedLength))];
        _dmaPageSize = _device.DmaLoggingStart(ranges, RamBlock.PageSize);
        _dmaLogging = true;
        _dirtyLogSource = _memory.AddDirtyLogSource(this);
    }

    private void StopDmaLogging()
    {
        if (!_dmaLogging)
        {
            return;
        }

        // One last report so that writes since the final sync are not forgotten by RAM.
        SyncDirtyLog(_memory!);
        _dirtyLogSource?.Dispose();
        _dirtyLogSource = null;
        _device.DmaLoggingStop();
        _dmaLogging = false;
    }

    private void CloseDataFd()
    {
        _dataFd?.Dispose();
        _dataFd = null;
    }

    private static bool IsPrecopy(VfioDeviceState state) => state is VfioDeviceState.PreCopy or VfioDeviceState.PreCopyP2P;

    private static bool ProbeDmaLogging(VfioDevice device)
    {
        try
        {
            device.DmaLoggingStop();
            return true;
        }
        catch (VfioMigrationException error) when (error.Errno == Errno.ENOTTY)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stateHandler.Dispose();
        lock (_gate)
        {
            CloseDataFd();
            _dirtyLogSource?.Dispose();
        }
    }

    /// <summary>The protocol when nobody supplied one: off, and nothing to approve.</summary>
    private sealed class SwitchoverAckOff : ISwitchoverAck
    {
        public static SwitchoverAckOff Instance { get; } = new();

        public bool IsEnabled => false;

        public void ApproveSwitchover() => throw new InvalidOperationException("switchover-ack is off");
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "{IdStr}: failed to change the device state from {From} to {To}")]
    private partial void LogSetStateFailed(Exception error, string idStr, string from, string to);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "{IdStr}: resetting the device")]
    private partial void LogResetting(string idStr);
}
