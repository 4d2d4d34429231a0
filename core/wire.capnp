# gale's wire format: one ZeroMQ message carries one Frame; a frame carries tuples and control
# messages of one sender, in the order they were emitted (so watermarks and batch markers stay in
# order with the data they follow).
@0xd4a1c8b2e6f30917;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("gale::wire");

struct Value {
  union {
    null @0 :Void;
    int64 @1 :Int64;
    float64 @2 :Float64;
    bool @3 :Bool;
    text @4 :Text;
    data @5 :Data;
    timestamp @6 :Int64;   # microseconds since the epoch
  }
}

struct Anchor {
  root @0 :UInt64;
  edge @1 :UInt64;
}

struct TupleMsg {
  stream @0 :UInt16;        # topology-wide stream id (component, stream) -> schema
  values @1 :List(Value);
  anchors @2 :List(Anchor);
  originNanos @3 :Int64;
}

enum ControlKind {
  ackInit @0;      # spout -> acker: new tree {root, value = initial xor, task = spout task}
  ack @1;          # bolt -> acker: {root, value = xor of edges}
  fail @2;         # bolt -> acker: {root, payload = "<component>\0<reason>", at most 1 KiB}
  treeDone @3;     # acker -> spout: {root, ok, payload = the first fail's payload when not ok}
  watermark @4;    # {time}
  batchBegin @5;   # {value = txid}
  batchEnd @6;     # {value = txid}
  barrier @7;      # {value = checkpoint id}
  endOfStream @8;
  custom @9;       # {value = tag, payload}: runtime-specific reports (e.g. batch task done)
}

struct Control {
  kind @0 :ControlKind;
  root @1 :UInt64;
  value @2 :UInt64;
  time @3 :Int64;
  task @4 :Int32;
  ok @5 :Bool;
  payload @6 :Data;
}

struct Item {
  union {
    tuple @0 :TupleMsg;
    control @1 :Control;
  }
}

struct Frame {
  version @0 :UInt16;
  srcTask @1 :Int32;
  items @2 :List(Item);
}
