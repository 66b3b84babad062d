export { type Change, changeSerde, type Serde, Serdes, type Window, type Windowed, windowedSerde } from './serdes.js';
export { RegistrySerde, type RegistrySerdeOptions, RegistrySerdes } from './registry-serde.js';
export { JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from './windows.js';
export {
  BranchedKStream,
  type Consumed,
  GlobalKTable,
  type Grouped,
  KGroupedStream,
  KGroupedTable,
  KStream,
  KTable,
  type KeyValue,
  type Materialized,
  type Produced,
  SessionWindowedKStream,
  SlidingWindowedKStream,
  StreamsBuilder,
  type StreamsBuilderOptions,
  TimeWindowedKStream,
} from './dsl.js';
export type { Processor, ProcessorContext, Rec, TimestampExtractor, Topology } from './topology.js';
export { type ProcessingGuarantee, SkeinStreams, type StreamsConfig, type StreamsEvent, type StreamsState, type TaskStatus } from './runtime.js';
export { type TestRecord, TopologyTestDriver } from './test-driver.js';
export type { Cancellable, PunctuationType, Punctuator } from './punctuation.js';
export type {
  KeyValueStoreSpec,
  ProcessorSupplier,
  ReadOnlyTypedKeyValueStore,
  RecordProcessor,
  RecordProcessorContext,
  StreamRecord,
  TypedKeyValueStore,
} from './processor-api.js';
export type { KeyQueryMetadata, QueryableKeyValueStore, QueryableWindowStore } from './interactive-queries.js';
