// Package projections folds the event stream into read models. Each
// projection is a durable JetStream consumer; it records in every read-model
// entry the last stream sequence it applied, so a redelivered event changes
// nothing, and any number of instances can share its consumer.
package projections
